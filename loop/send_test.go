//go:build linux

package loop

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/netloop/netloop/poll"
)

// sendLoop returns a Loop that is not running, with a ring, for driving
// Send and flush, WaitReadInto and recvAll by hand; Descs on it are made
// with sendDesc.
func sendLoop(t *testing.T) *Loop {
	t.Helper()
	r, err := openRing()
	if err != nil {
		t.Skipf("no batched sends here: %v", err)
	}
	lp := &Loop{ring: r, ops: make([]poll.Op, r.Entries())}
	lp.batching.Store(true)
	t.Cleanup(func() {
		if lp.ring != nil {
			lp.ring.Close()
		}
	})
	return lp
}

// sendDesc returns a Desc on lp for one end of a new socketpair, and the
// peer; both closed when the test ends.
func sendDesc(t *testing.T, lp *Loop) (*Desc, int) {
	a, b := socketpair(t)
	t.Cleanup(func() { syscall.Close(a); syscall.Close(b) })
	return newDesc(a, 1, lp), b
}

// waitPending waits until n sends are collected.
func waitPending(t *testing.T, lp *Loop, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		lp.sendMu.Lock()
		k := len(lp.pending)
		lp.sendMu.Unlock()
		if k == n {
			return
		}
		if k > n || time.Now().After(deadline) {
			t.Fatalf("%d sends collected, want %d", k, n)
		}
	}
}

// sendOne makes one Send of p on d in a batch of lp's, by hand: collect,
// wait until the Send is queued, flush.
func sendOne(t *testing.T, lp *Loop, d *Desc, p []byte) sendResult {
	t.Helper()
	lp.collecting.Store(true)
	res := make(chan sendResult, 1)
	go func() {
		n, err, ok := d.Send(p)
		res <- sendResult{0, n, err, ok}
	}()
	waitPending(t, lp, 1)
	lp.flush()
	return <-res
}

type sendResult struct {
	i   int // which writer
	n   int
	err syscall.Errno
	ok  bool
}

// Without a batch being collected, Send leaves the write to the caller, as
// it does for a write larger than SendMax.
func TestSendNotCollecting(t *testing.T) {
	lp := sendLoop(t)
	d, b := sendDesc(t, lp)
	if n, err, ok := d.Send([]byte("x")); ok || n != 0 || err != 0 {
		t.Fatalf("Send while not collecting = %d, %v, %v; want not taken", n, err, ok)
	}
	lp.collecting.Store(true)
	if _, _, ok := d.Send(make([]byte, SendMax+1)); ok {
		t.Fatal("Send took a write larger than SendMax")
	}
	lp.flush()
	if len(lp.pending) != 0 || lp.collecting.Load() {
		t.Fatalf("after flush: %d pending, collecting %v", len(lp.pending), lp.collecting.Load())
	}
	if n, _ := syscall.Read(b, make([]byte, 8)); n > 0 {
		t.Fatalf("peer received %d bytes of a send that was not taken", n)
	}
}

// The sends collected from many goroutines are made in as few
// io_uring_enter calls as the ring's size allows; each writer gets its own
// result and each peer exactly its bytes.
func TestSendBatch(t *testing.T) {
	lp := sendLoop(t)
	for _, k := range []int{1, 7, lp.ring.Entries() + 3} {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			sends0, flushes0 := lp.sends.Load(), lp.flushes.Load()
			lp.collecting.Store(true)
			peers := make([]int, k)
			res := make(chan sendResult, k)
			for i := range k {
				d, b := sendDesc(t, lp)
				peers[i] = b
				go func() {
					n, err, ok := d.Send(bytes.Repeat([]byte{byte(i)}, 1+i))
					res <- sendResult{i, n, err, ok}
				}()
			}
			waitPending(t, lp, k)
			select {
			case r := <-res:
				t.Fatalf("a Send returned (%+v) before the batch was made", r)
			default:
			}
			lp.flush()
			for range k {
				if r := <-res; !r.ok || r.err != 0 || r.n != 1+r.i {
					t.Fatalf("Send = %+v, want %d bytes sent", r, 1+r.i)
				}
			}
			buf := make([]byte, 512)
			for i, b := range peers {
				n, err := syscall.Read(b, buf)
				if err != nil || !bytes.Equal(buf[:n], bytes.Repeat([]byte{byte(i)}, 1+i)) {
					t.Fatalf("peer %d read %v %v, want %d bytes of %d", i, buf[:max(n, 0)], err, 1+i, i)
				}
			}
			wantFlushes := uint64((k + lp.ring.Entries() - 1) / lp.ring.Entries())
			if s, f := lp.sends.Load()-sends0, lp.flushes.Load()-flushes0; s != uint64(k) || f != wantFlushes {
				t.Fatalf("%d sends in %d io_uring_enter calls, want %d in %d", s, f, k, wantFlushes)
			}
		})
	}
}

// A send the kernel refuses comes back to its writer as write(2)'s error.
func TestSendErrno(t *testing.T) {
	lp := sendLoop(t)
	d, b := sendDesc(t, lp)
	syscall.Shutdown(b, syscall.SHUT_RD)
	syscall.Shutdown(d.fd, syscall.SHUT_WR)
	if r := sendOne(t, lp, d, []byte("late")); !r.ok || r.n != 0 || r.err != syscall.EPIPE {
		t.Fatalf("Send after shutdown = %+v, want EPIPE", r)
	}
}

// breakRing puts something that is not a ring under lp's ring descriptor:
// the mappings stay valid, io_uring_enter fails.
func breakRing(t *testing.T, lp *Loop) {
	null, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(null)
	if err := syscall.Dup3(null, lp.ring.FD(), syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
}

// If the submission itself fails, nothing was sent: every writer of the
// batch is told to write itself, and the loop stops batching.
func TestSendSubmitFails(t *testing.T) {
	lp := sendLoop(t)
	breakRing(t, lp)
	d, b := sendDesc(t, lp)
	if r := sendOne(t, lp, d, []byte("x")); r.ok {
		t.Fatalf("Send = %+v after a failed submission, want not taken", r)
	}
	if lp.ring != nil {
		t.Fatal("the loop kept its ring after a failed submission")
	}
	if n, _ := syscall.Read(b, make([]byte, 8)); n > 0 {
		t.Fatalf("peer received %d bytes of a failed submission", n)
	}
	if lp.collect(collectMin) {
		t.Fatal("collect yielded without a ring")
	}
}

type offerResult struct {
	res ReadResult
	ok  bool
	err error
}

// offer starts a reader that parks on d (known empty at its current read
// sequence) with a read offer of p, and waits until the offer is up.
func offer(t *testing.T, d *Desc, p []byte, pool bool) <-chan offerResult {
	t.Helper()
	ch := make(chan offerResult, 1)
	seq := d.ReadSeq()
	go func() {
		d.LockRead()
		defer d.UnlockRead()
		res, ok, err := d.WaitReadInto(seq, p, pool)
		ch <- offerResult{res, ok, err}
	}()
	for deadline := time.Now().Add(10 * time.Second); d.offer.Load() == nil; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the reader made no offer")
		}
	}
	return ch
}

// result waits for an offering reader's result.
func result(t *testing.T, ch <-chan offerResult) offerResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the reader was never woken")
		panic("unreachable")
	}
}

// readEvent does what the loop does for a read event on d: it claims the
// offer and, after the batch, reads for it (or wakes the reader).
func readEvent(lp *Loop, ds ...*Desc) {
	for _, d := range ds {
		dispatch(&poll.Event{Fd: int32(d.fd), Tag: d.gen, Flags: poll.Readable}, 1, true, false)
	}
	if len(lp.claims) > 0 {
		lp.recvAll()
	}
}

// A read event makes the loop read for every parked reader of the batch,
// into the reader's buffer or a pooled one, with one io_uring_enter; each
// reader gets read(2)'s result: bytes, EAGAIN, or 0 at end of stream.
func TestReadOffers(t *testing.T) {
	lp := sendLoop(t)
	var ds []*Desc
	var peers []int
	for range 4 {
		d, b := sendDesc(t, lp)
		fds.put(d) // dispatch finds Descs in the table
		t.Cleanup(func() { fds.remove(d) })
		ds, peers = append(ds, d), append(peers, b)
	}
	bufs := [][]byte{make([]byte, 64), nil, make([]byte, 64), make([]byte, 64)}
	chs := []<-chan offerResult{
		offer(t, ds[0], bufs[0], false),
		offer(t, ds[1], make([]byte, 8), true),
		offer(t, ds[2], bufs[2], false),
		offer(t, ds[3], bufs[3], false),
	}
	syscall.Write(peers[0], []byte("first"))
	syscall.Write(peers[1], []byte("second, longer than the reader's slice"))
	// peers[2] sends nothing: the readiness was spurious.
	syscall.Shutdown(peers[3], syscall.SHUT_WR)
	recvs := lp.recvs.Load()
	readEvent(lp, ds...)
	if got := lp.recvs.Load() - recvs; got != 4 {
		t.Fatalf("%d reads made, want 4", got)
	}
	want := []struct {
		data string
		err  syscall.Errno
	}{{"first", 0}, {"second, longer than the reader's slice", 0}, {"", syscall.EAGAIN}, {"", 0}}
	for i, ch := range chs {
		r := result(t, ch)
		if !r.ok || r.err != nil {
			t.Fatalf("reader %d: ok %v, err %v", i, r.ok, r.err)
		}
		buf := bufs[i]
		if i == 1 {
			if r.res.Buf == nil {
				t.Fatal("a pooled read came back without its buffer")
			}
			buf = r.res.Buf.B
		} else if r.res.Buf != nil {
			t.Fatalf("reader %d got a pooled buffer it did not ask for", i)
		}
		if got := string(buf[:r.res.N]); got != want[i].data || r.res.Err != want[i].err {
			t.Errorf("reader %d: %q, %v; want %q, %v", i, got, r.res.Err, want[i].data, want[i].err)
		}
		if r.res.Seq != ds[i].ReadSeq() {
			t.Errorf("reader %d: result for read sequence %d, now %d", i, r.res.Seq, ds[i].ReadSeq())
		}
		if ds[i].offer.Load() != nil {
			t.Errorf("reader %d left its offer up", i)
		}
	}
}

// A reader woken by its deadline takes its offer back; the loop, reading
// for a later event, leaves the bytes in the socket for the next Read.
func TestReadOfferWithdrawn(t *testing.T) {
	lp := sendLoop(t)
	d, b := sendDesc(t, lp)
	fds.put(d)
	defer fds.remove(d)
	d.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	r := result(t, offer(t, d, make([]byte, 8), false))
	if r.ok || !errors.Is(r.err, os.ErrDeadlineExceeded) || d.offer.Load() != nil {
		t.Fatalf("after the deadline: ok %v, err %v, offer %v", r.ok, r.err, d.offer.Load())
	}
	syscall.Write(b, []byte("later"))
	readEvent(lp, d)
	buf := make([]byte, 8)
	if n, err := syscall.Read(d.fd, buf); string(buf[:max(n, 0)]) != "later" {
		t.Fatalf("the socket holds %q, %v; want the bytes nobody read", buf[:max(n, 0)], err)
	}
}

// If the loop cannot read (the submission fails), the reader is told to
// read itself and the loop stops batching.
func TestReadOfferSubmitFails(t *testing.T) {
	lp := sendLoop(t)
	d, b := sendDesc(t, lp)
	fds.put(d)
	defer fds.remove(d)
	ch := offer(t, d, make([]byte, 8), false)
	breakRing(t, lp)
	syscall.Write(b, []byte("x"))
	readEvent(lp, d)
	if r := result(t, ch); r.ok || r.err != nil {
		t.Fatalf("after a failed submission: %+v, want: read yourself", r)
	}
	if lp.batching.Load() || lp.ring != nil {
		t.Fatal("the loop kept batching after a failed submission")
	}
	if n, _ := syscall.Read(d.fd, make([]byte, 8)); n != 1 {
		t.Fatalf("the byte is not in the socket any more (read %d)", n)
	}
}

// An offer the loop finds in one Desc but that another Desc's reader now
// holds (the first reader withdrew it and the pool handed it on) is read
// for the reader that holds it, which is woken with the result at once,
// not only at its own next event.
func TestReadOfferReused(t *testing.T) {
	lp := sendLoop(t)
	a, _ := sendDesc(t, lp)
	b, bPeer := sendDesc(t, lp)
	b.gen = 2
	fds.put(a)
	fds.put(b)
	defer fds.remove(a)
	defer fds.remove(b)
	p := make([]byte, 8)
	ch := offer(t, b, p, false)
	a.offer.Store(b.offer.Load()) // as if a's reader had just left it there
	defer a.offer.Store(nil)
	syscall.Write(bPeer, []byte("hello"))
	readEvent(lp, a) // an event for a, none for b
	if r := result(t, ch); !r.ok || string(p[:r.res.N]) != "hello" {
		t.Fatalf("b's reader got %+v, %q; want its own bytes", r, p[:max(r.res.N, 0)])
	}
}

// A loop held up between a read event's advance and its claim (its thread
// descheduled by the OS, as with GOMAXPROCS=2 and the load on the same
// CPUs) claims an offer that its reader made after that advance, at a read
// sequence that already counts the event. The claimed read may take the
// last bytes that will ever come, so the reader must be woken by the read,
// not by a later event (bench/load.sh echo-c50-p2 stalled a connection
// this way about once in 25 three-second runs).
func TestReadOfferClaimedAfterAdvance(t *testing.T) {
	lp := sendLoop(t)
	d, peer := sendDesc(t, lp)
	d.advance(&d.r, 1) // the event's advance
	p := make([]byte, 8)
	ch := offer(t, d, p, false) // the reader's sequence counts it
	for deadline := time.Now().Add(10 * time.Second); !d.r.parked.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the reader did not park")
		}
	}
	syscall.Write(peer, []byte("hello"))
	if !lp.claim(d) { // the event's claim, late
		t.Fatal("the open offer was not claimed")
	}
	lp.recvAll()
	if r := result(t, ch); !r.ok || string(p[:r.res.N]) != "hello" {
		t.Fatalf("reader got %+v, %q; want the bytes the loop read for it", r, p[:max(r.res.N, 0)])
	}
}

// The same late claim, but the loop cannot make the read (the submission
// fails): the reader must then make its own read even though no event
// moved its sequence, so WaitReadInto clears "known empty" for it.
// Otherwise Read would park again at once, with the bytes in the socket.
func TestReadOfferClaimedAfterAdvanceNotMade(t *testing.T) {
	lp := sendLoop(t)
	d, peer := sendDesc(t, lp)
	d.advance(&d.r, 1)
	d.LockRead()
	seq := d.ReadSeq()
	d.SetReadDrained(seq, true) // as Read does before it offers
	d.UnlockRead()
	ch := offer(t, d, make([]byte, 8), false)
	for deadline := time.Now().Add(10 * time.Second); !d.r.parked.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the reader did not park")
		}
	}
	syscall.Write(peer, []byte("x"))
	breakRing(t, lp)
	if !lp.claim(d) {
		t.Fatal("the open offer was not claimed")
	}
	lp.recvAll()
	if r := result(t, ch); r.ok || r.err != nil {
		t.Fatalf("after a failed submission: %+v, want: read yourself", r)
	}
	if d.ReadDrained(seq) {
		t.Fatal("still known empty at the same sequence: Read would park again without reading")
	}
}
