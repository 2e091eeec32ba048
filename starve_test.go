package netloop_test

import (
	"io"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netloop/netloop"
)

// TestEveryPBusy: with a goroutine that never blocks holding the only P,
// connections on netloop must make at least as much progress as on package
// net. The runtime then consults its poller only from sysmon, which queues
// a woken netloop loop beside the preempted hog; a loop that woke its
// connections from there would have them wait behind the hog for a whole
// time slice (this measured 0.6x package net's round trips before the loop
// learnt to detect starvation and wait on a timer instead).
func TestEveryPBusy(t *testing.T) {
	if testing.Short() {
		t.Skip("timed: runs 2.4 s with GOMAXPROCS=1")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	defer spinHogs(1)()

	const conns, window = 20, 600 * time.Millisecond
	roundTrips := func(im impl) int64 {
		starvedBefore := netloop.ReadStats().LoopStarved
		ln := listen(t, im, "tcp4")
		defer serveEach(ln, func(c net.Conn) { io.Copy(c, c) })()
		end := time.Now().Add(window)
		total := pingPong(t, ln, conns, end)
		if im.name == "netloop" && netloop.Native() {
			if netloop.ReadStats().LoopStarved == starvedBefore {
				t.Error("no loop noticed that it was starved (Stats.LoopStarved)")
			}
		}
		return total
	}

	counts := map[string]int64{}
	for _, round := range [][]impl{impls, {impls[1], impls[0]}} {
		for _, im := range round {
			n := roundTrips(im)
			counts[im.name] += n
			t.Logf("%s: %d round trips in %v", im.name, n, window)
		}
	}
	if counts["net"] == 0 {
		t.Fatal("package net made no progress at all")
	}
	ratio := float64(counts["netloop"]) / float64(counts["net"])
	t.Logf("netloop/net round trips with every P busy: %.2f", ratio)
	if ratio < 0.9 {
		t.Errorf("netloop made %.2fx package net's progress with every P busy; want at least 0.9x", ratio)
	}
}

// TestLongRunQueueIsNotStarvation: hundreds of goroutines that each compute
// for a while and then block keep the only P busy, but reach scheduling
// points all the time; the loops must not take that for starvation (which
// would make them poll on timers and push the goroutines they wake ahead of
// the queue; a loop that timed a runtime.Gosched did, and doubled HTTP/2's
// p99 under h2load).
func TestLongRunQueueIsNotStarvation(t *testing.T) {
	if testing.Short() {
		t.Skip("timed: runs 1-3 s with GOMAXPROCS=1")
	}
	if !netloop.Native() {
		t.Skip("the package-net backend has no loops")
	}
	if raceEnabled {
		// Measured: under the race runtime a 100 µs time.Sleep beside
		// 200 goroutine pairs that hand off to each other comes back
		// with a p99 of 24 ms (32 µs without), so timers are late there
		// for a reason other than a goroutine that never blocks. .ci/run
		// runs this test without -race.
		t.Skip("the race runtime delays timers behind goroutine hand-offs")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ln := listen(t, impls[1], "tcp4")
	stop := serveEach(ln, func(c net.Conn) {
		b := make([]byte, 1)
		for {
			if _, err := c.Read(b); err != nil {
				return
			}
			spinFor(100 * time.Microsecond) // CPU work per message
			if _, err := c.Write(b); err != nil {
				return
			}
		}
	})
	defer stop()
	// A wait or two in a second can pass for starvation without any fault
	// of the loop's (CI failed twice with 1; here 1 run in 8 had 1-2,
	// alone and beside another process's busy loop on the same core),
	// from pauses that Loop.overran's CPU check does not tell apart. What
	// this test guards against reports more: 11-78 in most 1 s windows
	// with overran's parking and CPU checks removed and lateWake at 1 ms,
	// though some windows of that build had none, as they did for the
	// single window this test used to take. So a window with more than 2
	// fails at once, and 1-2 are forgiven unless three windows in a row
	// have them.
	var late []uint64
	for range 3 {
		before := netloop.ReadStats().LoopStarved
		pingPong(t, ln, 200, time.Now().Add(time.Second))
		n := netloop.ReadStats().LoopStarved - before
		if n == 0 {
			return
		}
		late = append(late, n)
		t.Logf("window %d: %d starved waits", len(late), n)
		if n > 2 {
			break
		}
	}
	t.Errorf("loops reported %v starved waits in 1 s windows under a long run queue of goroutines that block", late)
}

// pingPong dials conns clients to ln that each send one byte and read it
// back until end, and returns the round trips they completed.
func pingPong(t *testing.T, ln net.Listener, conns int, end time.Time) int64 {
	var total atomic.Int64
	var clients sync.WaitGroup
	for range conns {
		c := dial(t, ln)
		c.SetDeadline(end.Add(10 * time.Second))
		clients.Add(1)
		go func() {
			defer clients.Done()
			defer c.Close()
			b := []byte{'x'}
			for time.Now().Before(end) {
				if _, err := c.Write(b); err != nil {
					t.Error(err)
					return
				}
				if _, err := io.ReadFull(c, b); err != nil {
					t.Error(err)
					return
				}
				total.Add(1)
			}
		}()
	}
	clients.Wait()
	return total.Load()
}

// spinFor computes for about d without blocking.
func spinFor(d time.Duration) {
	x := uint64(1)
	for start := time.Now(); time.Since(start) < d; {
		for range 64 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	_ = x
}

// TestNoLatencyAfterIdle: after a quiet spell the loop probes for
// starvation with a timer; that must not take it out of the runtime's
// poller, or an event arriving during the probe waits for the timer (an
// idle P sleeps at least 1 ms in epoll_wait). Measured with the loop
// sleeping on the probe: the second round trip after 10 ms of quiet took
// 1.14 ms (package net: 18 µs).
func TestNoLatencyAfterIdle(t *testing.T) {
	if testing.Short() {
		t.Skip("timed: runs 0.6 s with GOMAXPROCS=1")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ln := listen(t, impls[1], "tcp4")
	defer serveEach(ln, func(c net.Conn) { io.Copy(c, readerOnlyT{c}) })()
	c := dial(t, ln)
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	b := []byte{1}
	var rtts []time.Duration
	for range 50 {
		time.Sleep(10 * time.Millisecond)
		for i := range 2 { // the first wakes the loop after the quiet spell
			t0 := time.Now()
			if _, err := c.Write(b); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c, b); err != nil {
				t.Fatal(err)
			}
			if i == 1 {
				rtts = append(rtts, time.Since(t0))
			}
		}
	}
	slices.Sort(rtts)
	if p50 := rtts[len(rtts)/2]; p50 > 500*time.Microsecond {
		t.Errorf("median round trip right after a quiet spell: %v, want well under 1 ms", p50)
	}
}

// serveEach runs handle on every connection ln accepts, closing it after,
// until ln is closed. The func it returns closes ln and waits for every
// handler, so that no connection of a test is still open in the next one
// (whose process-wide Stats it would change).
func serveEach(ln net.Listener, handle func(net.Conn)) (stop func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return func() {
		ln.Close()
		wg.Wait()
	}
}

// spinHogs starts n goroutines of pure computation, which only the
// runtime preempts, and returns a function that stops them.
func spinHogs(n int) (stop func()) {
	var done atomic.Bool
	var spun sync.WaitGroup
	for range n {
		spun.Add(1)
		go func() {
			defer spun.Done()
			x := uint64(1)
			for !done.Load() {
				for range 1 << 16 {
					x = x*6364136223846793005 + 1442695040888963407
				}
			}
			_ = x
		}()
	}
	return func() { done.Store(true); spun.Wait() }
}

// readerOnlyT hides WriteTo, so that io.Copy echoes through Read and Write.
type readerOnlyT struct{ io.Reader }
