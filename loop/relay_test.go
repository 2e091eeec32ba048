//go:build linux

package loop

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netloop/netloop/poll"
)

// parkedDirs returns n fresh descriptors of one loop whose read directions
// look parked (announced, nobody blocked), so that a token sent to one
// stays in its channel for the test to see.
func parkedDirs(t *testing.T, n int) []*Desc {
	t.Helper()
	var ds []*Desc
	for range n {
		d, _, _ := registered(t)
		if len(ds) > 0 && d.lp != ds[0].lp {
			t.Fatal("the descriptors are on different loops")
		}
		d.r.announce()
		ds = append(ds, d)
	}
	return ds
}

// queue advances ds's read directions and queues them in r, as a starved
// loop's dispatch does.
func queue(r *relay, ds ...*Desc) {
	id := ds[0].lp.newBatch()
	for _, d := range ds {
		d.advance(&d.r, id)
		r.push(&d.r)
	}
}

// quiet returns a relay without a timer: only hand-ons move it.
func quiet() *relay { return &relay{armed: true} }

// holdTimer keeps lp's relay timer from firing until the test ends, so that
// only hand-ons move it; then it wakes whatever is left.
func holdTimer(t *testing.T, lp *Loop) {
	r := &lp.relay
	r.mu.Lock()
	if r.timer != nil {
		r.timer.Stop()
	}
	r.armed = true
	r.mu.Unlock()
	t.Cleanup(func() {
		r.mu.Lock()
		r.moved -= int64(time.Hour)
		r.mu.Unlock()
		r.unstick()
		r.mu.Lock()
		r.armed = false
		r.mu.Unlock()
	})
}

// tokens reports which of ds's read directions have a token waiting.
func tokens(ds []*Desc) []bool {
	var got []bool
	for _, d := range ds {
		got = append(got, len(d.r.wake) > 0)
	}
	return got
}

// TestRelayHandsOn: the relay wakes one parked goroutine per turn, in
// order, and a goroutine hands the turn on when it has taken its token.
func TestRelayHandsOn(t *testing.T) {
	ds := parkedDirs(t, 3)
	r := quiet()
	queue(r, ds...)
	for i := range ds {
		r.next()
		want := []bool{false, false, false}
		want[i] = true
		if got := tokens(ds); !slices.Equal(got, want) {
			t.Fatalf("turn %d: tokens %v, want %v", i, got, want)
		}
		if q, want := r.queued.Load(), int32(len(ds)-1-i); q != want {
			t.Errorf("turn %d: relay holds %d, want %d", i, q, want)
		}
		<-ds[i].r.wake // the woken goroutine takes its token
	}
	r.next() // the last one's turn: nothing left
	if got := tokens(ds); slices.Contains(got, true) {
		t.Errorf("tokens after the relay emptied: %v", got)
	}
}

// TestRelaySkipsUnparked: a direction nobody is parked on is not queued,
// and one whose goroutine stopped parking after it was queued takes no
// turn; the next parked one does.
func TestRelaySkipsUnparked(t *testing.T) {
	ds := parkedDirs(t, 4)
	ds[0].r.parked.Store(false)
	r := quiet()
	queue(r, ds...)
	if q := r.queued.Load(); q != 3 {
		t.Errorf("relay holds %d after queueing one unparked and three parked, want 3", q)
	}
	ds[1].r.parked.Store(false)
	ds[2].r.parked.Store(false)
	r.next()
	if got, want := tokens(ds), []bool{false, false, false, true}; !slices.Equal(got, want) {
		t.Errorf("tokens %v, want %v", got, want)
	}
	if q := r.queued.Load(); q != 0 {
		t.Errorf("relay holds %d, want 0", q)
	}
}

// TestRelayUnsticks: a relay that hands no turn on for relayStall is woken
// all at once by unstick (its timer's call, and every relayed batch's), and
// not before.
func TestRelayUnsticks(t *testing.T) {
	ds := parkedDirs(t, 3)
	r := quiet()
	queue(r, ds...)
	r.moved = mono() + int64(time.Hour) // however slow this test runs
	if !r.unstick() {
		t.Error("unstick emptied a relay that had not stalled")
	}
	if got := tokens(ds); slices.Contains(got, true) {
		t.Errorf("tokens after an early unstick: %v, want none", got)
	}
	r.moved = mono() - int64(relayStall) // the last turn, relayStall ago
	if r.unstick() {
		t.Error("unstick left a stalled relay non-empty")
	}
	if got := tokens(ds); slices.Contains(got, false) {
		t.Errorf("tokens after unsticking: %v, want all", got)
	}
}

// TestRelayTimerUnsticks: with nobody handing a turn on, the relay's timer
// wakes what it holds.
func TestRelayTimerUnsticks(t *testing.T) {
	ds := parkedDirs(t, 2)
	var r relay
	defer r.stop()
	queue(&r, ds...)
	for deadline := time.Now().Add(5 * time.Second); slices.Contains(tokens(ds), false); {
		if time.Now().After(deadline) {
			t.Fatalf("tokens %v %v after queueing: the timer did not unstick the relay", tokens(ds), 5*time.Second)
		}
		time.Sleep(time.Millisecond)
	}
	if q := r.queued.Load(); q != 0 {
		t.Errorf("relay holds %d after its timer fired", q)
	}
}

// TestStarvedDispatchRelays: with relay (a starved loop, more than one P),
// dispatch queues the goroutines it wakes and wakes the first; otherwise it
// wakes them all.
func TestStarvedDispatchRelays(t *testing.T) {
	for _, relay := range []bool{false, true} {
		ds := parkedDirs(t, 3)
		lp := ds[0].lp
		holdTimer(t, lp)
		var evs []poll.Event
		for _, d := range ds {
			evs = append(evs, poll.Event{Fd: int32(d.fd), Tag: d.gen, Flags: poll.Readable})
		}
		seqs := []uint64{ds[0].ReadSeq(), ds[1].ReadSeq(), ds[2].ReadSeq()}
		lp.dispatchAll(evs, lp.newBatch(), false, relay)
		want := []bool{true, !relay, !relay}
		if got := tokens(ds); !slices.Equal(got, want) {
			t.Errorf("relay %v: tokens after dispatch %v, want %v", relay, got, want)
		}
		for i, d := range ds {
			if d.ReadSeq() == seqs[i] {
				t.Errorf("relay %v: descriptor %d's seq did not advance", relay, i)
			}
		}
	}
}

// TestRelayedReadersAllWake: real parked readers, relayed, all wake by
// hand-ons alone (the timer held), even with a reader queued twice ahead
// of the others: it must not hand the turn to itself.
func TestRelayedReadersAllWake(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	var ds []*Desc
	var dones []<-chan error
	for range 8 {
		d, _, _ := registered(t)
		ds = append(ds, d)
		dones = append(dones, parkReader(t, d))
	}
	lp := ds[0].lp
	holdTimer(t, lp)
	queue(&lp.relay, append([]*Desc{ds[0]}, ds...)...)
	lp.relay.next()
	for i, done := range dones {
		if err := <-done; err != nil { // parkReader's watchdog deadline
			t.Fatalf("reader %d: %v (a relayed wake-up was lost)", i, err)
		}
	}
	if q := lp.relay.queued.Load(); q != 0 {
		t.Errorf("relay holds %d after every reader woke", q)
	}
}

// TestStarvedLoopLosesNoWakeup: invariant 2 with the relay and the assists
// at work (the loop kept counting as starved, with several Ps): readers
// that follow the usage protocol get every byte their peers write, one at
// a time, without a watchdog deadline passing.
func TestStarvedLoopLosesNoWakeup(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	const conns, rounds = 16, 300
	type pair struct {
		d    *Desc
		a, b int
	}
	var ps []pair
	for range conns {
		d, a, b := registered(t)
		ps = append(ps, pair{d, a, b})
	}
	lp := ps[0].d.lp
	stop := make(chan struct{})
	var starving sync.WaitGroup
	starving.Add(1)
	go func() { // keep the loop relaying, and its poller stale for assists
		defer starving.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			lp.multiP.Store(true)
			starve(lp)
			time.Sleep(time.Millisecond)
		}
	}()
	defer func() {
		close(stop)
		starving.Wait()
		lp.lateAt.Store(0)
		lp.multiP.Store(false)
	}()
	assists := lp.assists.Load()

	errs := make(chan error, conns)
	for _, p := range ps {
		go func() {
			d := p.d
			d.SetReadDeadline(time.Now().Add(20 * time.Second)) // watchdog
			d.LockRead()
			defer d.UnlockRead()
			buf := make([]byte, 1)
			for got := 0; got < rounds; {
				seq := d.ReadSeq()
				if d.ReadDrained(seq) {
					if err := d.WaitRead(seq); err != nil {
						errs <- fmt.Errorf("after %d bytes: %w", got, err)
						return
					}
					continue
				}
				n, err := syscall.Read(p.a, buf)
				switch {
				case err == syscall.EAGAIN:
					d.SetReadDrained(seq, true)
				case err != nil:
					errs <- err
					return
				default:
					got += n
				}
			}
			errs <- nil
		}()
	}
	writeDeadline := time.Now().Add(20 * time.Second)
	for i := range rounds {
		for _, p := range ps {
			for {
				_, err := syscall.Write(p.b, []byte{byte(i)})
				if err == nil {
					break
				}
				if err != syscall.EAGAIN || time.Now().After(writeDeadline) {
					t.Fatalf("writing byte %d: %v (a reader stopped reading?)", i, err)
				}
				time.Sleep(time.Millisecond) // a unix socket's buffer holds ~200 one-byte writes
			}
		}
		if i%8 == 0 {
			time.Sleep(100 * time.Microsecond) // let readers park
		}
	}
	for range conns {
		if err := <-errs; err != nil {
			t.Fatalf("a reader of a starved loop: %v (a wake-up was lost)", err)
		}
	}
	lp.relay.mu.Lock()
	relayed := lp.relay.moved != 0
	lp.relay.mu.Unlock()
	if !relayed {
		t.Error("the relay never ran")
	}
	if lp.assists.Load() == assists {
		t.Error("no assist ran")
	}
}

// TestRelayStopsWithLoop: what a stopping loop's relay holds is woken, and
// its timer stopped (invariant 7: nothing of the loop outlives it).
func TestRelayStopsWithLoop(t *testing.T) {
	d, _, _ := registered(t)
	lp := d.lp
	d.w.announce() // looks parked, so that push queues it and arms the timer
	lp.relay.push(&d.w)
	closeLast(t, d)
	lp.relay.mu.Lock()
	defer lp.relay.mu.Unlock()
	if lp.relay.head != len(lp.relay.q) {
		t.Error("the stopped loop's relay still holds directions")
	}
	if lp.relay.timer == nil || lp.relay.timer.Stop() {
		t.Error("the relay's timer was not armed, or was still pending after the loop stopped")
	}
	if len(d.w.wake) == 0 {
		t.Error("the direction the relay held was not woken")
	}
}

// TestWokenWhileRelayingSpreads: a reader woken while its loop relays (more
// than one P, starved a moment ago) yields once to the global run queue
// (spread); one woken while the loop is not starved, or has one P, does
// not.
func TestWokenWhileRelayingSpreads(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	for _, c := range []struct {
		starved, multiP bool
		want            uint64
	}{{true, true, 1}, {false, true, 0}, {true, false, 0}} {
		d, _, _ := registered(t)
		lp := d.lp
		done := parkReader(t, d)
		lp.multiP.Store(c.multiP)
		lp.lateAt.Store(0)
		if c.starved {
			starve(lp)
		}
		before := lp.spreads.Load()
		d.advance(&d.r, lp.newBatch())
		d.r.signal()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := lp.spreads.Load() - before; got != c.want {
			t.Errorf("starved %v, more than one P %v: the woken reader yielded %d times, want %d", c.starved, c.multiP, got, c.want)
		}
		lp.lateAt.Store(0)
		lp.multiP.Store(false)
	}
}
