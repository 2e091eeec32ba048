//go:build linux

package loop

import (
	"bytes"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/netloop/netloop/poll"
)

// sendLoop returns a Loop that is not running, with a ring, for driving
// Send and flush by hand; Descs on it are made with sendDesc.
func sendLoop(t *testing.T) *Loop {
	t.Helper()
	r, err := openRing()
	if err != nil {
		t.Skipf("no batched sends here: %v", err)
	}
	lp := &Loop{ring: r, ops: make([]poll.SendOp, r.Entries())}
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
	lp.collecting.Store(true)
	res := make(chan sendResult, 1)
	go func() {
		n, err, ok := d.Send([]byte("late"))
		res <- sendResult{0, n, err, ok}
	}()
	waitPending(t, lp, 1)
	lp.flush()
	if r := <-res; !r.ok || r.n != 0 || r.err != syscall.EPIPE {
		t.Fatalf("Send after shutdown = %+v, want EPIPE", r)
	}
}

// If the submission itself fails, nothing was sent: every writer of the
// batch is told to write itself, and the loop stops batching.
func TestSendSubmitFails(t *testing.T) {
	lp := sendLoop(t)
	// Put something that is not a ring under the ring's descriptor: the
	// mappings stay valid, io_uring_enter fails.
	null, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(null)
	if err := syscall.Dup3(null, lp.ring.FD(), syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	d, b := sendDesc(t, lp)
	lp.collecting.Store(true)
	res := make(chan sendResult, 1)
	go func() {
		n, err, ok := d.Send([]byte("x"))
		res <- sendResult{0, n, err, ok}
	}()
	waitPending(t, lp, 1)
	lp.flush()
	if r := <-res; r.ok {
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
