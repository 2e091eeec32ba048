//go:build linux

package loop

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/netloop/netloop/poll"
)

// socketpair returns a connected pair of non-blocking unix sockets.
func socketpair(t *testing.T) (int, int) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fds[0], fds[1]
}

// registered registers one end of a new socketpair with a one-loop group
// and returns its Desc, that end and the peer, all closed when the test ends.
func registered(t *testing.T) (d *Desc, a, b int) {
	t.Helper()
	a, b = socketpair(t)
	t.Cleanup(func() { syscall.Close(b) })
	d, err := Register(a, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(syscall.Close) })
	return d, a, b
}

// Invariant 1: the descriptor is closed only after the last reference is
// dropped, and after it has left the poller and the table.
func TestCloseWaitsForReferences(t *testing.T) {
	a, b := socketpair(t)
	defer syscall.Close(b)
	d, err := Register(a, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Incref() {
		t.Fatal("Incref failed on an open Desc")
	}
	closed := make(chan int, 1)
	done := make(chan error, 1)
	go func() {
		done <- d.Close(func(fd int) error {
			if fds.get(fd) == d {
				t.Error("closeFD called while the table still maps the descriptor")
			}
			closed <- fd
			return syscall.Close(fd)
		})
	}()
	select {
	case <-closed:
		t.Fatal("descriptor closed while a reference was held")
	case <-time.After(50 * time.Millisecond):
	}
	if d.Incref() {
		t.Fatal("Incref succeeded after Close began")
	}
	// setDeadline takes no reference; it must still fail once Close has
	// begun, as package net's does.
	if err := d.SetReadDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("SetReadDeadline while Close waits for references: %v, want net.ErrClosed", err)
	}
	d.Decref()
	select {
	case fd := <-closed:
		if fd != a {
			t.Fatalf("closed %d, want %d", fd, a)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not finish after the last reference was dropped")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := d.Close(func(int) error { t.Error("closeFD called twice"); return nil }); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

// Invariant 1: an event fetched for a descriptor that has since been
// closed, and whose number now belongs to a new registration, is dropped.
func TestStaleEventDropped(t *testing.T) {
	a, b := socketpair(t)
	defer syscall.Close(b)
	old, err := Register(a, 1)
	if err != nil {
		t.Fatal(err)
	}
	oldGen := old.gen
	// Close without closing the number, then register the same number.
	if err := old.Close(func(int) error { return nil }); err != nil {
		t.Fatal(err)
	}
	d, err := Register(a, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(syscall.Close)
	seq := d.ReadSeq()
	dispatch(&poll.Event{Fd: int32(a), Tag: oldGen, Flags: poll.Readable | poll.Hup}, 1, false, false)
	if d.ReadSeq() != seq || d.ReadHup() {
		t.Fatal("stale event applied to the new registration")
	}
	dispatch(&poll.Event{Fd: int32(a), Tag: d.gen, Flags: poll.Readable}, 1, false, false)
	if d.ReadSeq() == seq {
		t.Fatal("current event not applied")
	}
}

// Invariant 2: a goroutine that loaded seq before its syscall does not
// park if an event arrived in between, and is woken by a later one.
func TestNoLostWakeup(t *testing.T) {
	d, a, b := registered(t)
	d.LockRead()
	defer d.UnlockRead()
	for i := 0; i < 1000; i++ {
		seq := d.ReadSeq()
		d.SetReadDrained(seq, true)
		go syscall.Write(b, []byte{1}) // an edge, racing with the park
		done := make(chan error, 1)
		go func() { done <- d.WaitRead(seq) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: wakeup lost", i)
		}
		buf := make([]byte, 16)
		for {
			// drain, so the next write raises a new edge
			if _, err := syscall.Read(a, buf); err != nil {
				break
			}
		}
	}
}

// Invariant 3 and 4: Close and deadline changes wake a parked waiter.
func TestWaitWakesOnCloseAndDeadline(t *testing.T) {
	a, b := socketpair(t)
	defer syscall.Close(b)
	d, err := Register(a, 1)
	if err != nil {
		t.Fatal(err)
	}
	wait := func() chan error {
		ch := make(chan error, 1)
		go func() {
			d.LockRead()
			defer d.UnlockRead()
			ch <- d.WaitRead(d.ReadSeq())
		}()
		time.Sleep(20 * time.Millisecond)
		return ch
	}
	expect := func(ch chan error, want error) {
		t.Helper()
		select {
		case err := <-ch:
			if !errors.Is(err, want) {
				t.Fatalf("got %v, want %v", err, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("waiter not woken")
		}
	}
	ch := wait()
	d.SetReadDeadline(time.Unix(1, 0))
	expect(ch, os.ErrDeadlineExceeded)
	d.SetReadDeadline(time.Now().Add(time.Hour))
	ch = wait()
	d.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	expect(ch, os.ErrDeadlineExceeded)
	d.SetReadDeadline(time.Time{})
	ch = wait()
	d.Close(syscall.Close)
	expect(ch, net.ErrClosed)
	if s := ReadStats(); s.Loops != 0 || s.Users != 0 {
		t.Fatalf("group not stopped after the last Close: %+v", s)
	}
}

// Invariant 7: what an idle connection holds. A Desc stays in its size
// class, a parked reader's offer in the 64-byte class, and a direction
// nobody has waited on holds no channel (nor does a Desc before Close).
func TestIdleFootprint(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) == 8 {
		if s := unsafe.Sizeof(Desc{}); s > 176 {
			t.Errorf("Desc is %d bytes, want at most 176", s)
		}
		if s := unsafe.Sizeof(readOffer{}); s > 64 {
			t.Errorf("readOffer is %d bytes, want at most 64", s)
		}
	}
	d, _, b := registered(t)
	if d.r.wake != nil || d.w.wake != nil || d.idle.Load() != nil {
		t.Fatal("a new Desc holds channels")
	}
	d.LockRead()
	seq := d.ReadSeq()
	d.SetReadDrained(seq, true)
	go func() {
		time.Sleep(10 * time.Millisecond)
		syscall.Write(b, []byte{1})
	}()
	if err := d.WaitRead(seq); err != nil {
		t.Fatal(err)
	}
	d.UnlockRead()
	if d.r.wake == nil {
		t.Error("the reader parked without a wake channel")
	}
	if d.w.wake != nil {
		t.Error("the write side made a wake channel nobody waited on")
	}
}

// TestShortReadTrustedOnlyWhileFed: a short read proves the socket empty
// (ReadDrained) while the loop keeps up, or if nothing was written since:
// while the loop is starved its seq lags, and a peer may already have
// answered our write. EAGAIN at the same seq always does.
func TestShortReadTrustedOnlyWhileFed(t *testing.T) {
	d, _, _ := registered(t)
	lp := d.lp
	d.LockRead()
	defer d.UnlockRead()
	seq := d.ReadSeq()
	for _, c := range []struct {
		starved, multiP, certain, wrote, want bool
	}{
		{false, true, false, false, true},
		{false, true, false, true, true},
		{false, true, true, true, true},
		{true, true, false, false, true}, // nothing written: nothing to answer
		{true, true, false, true, false}, // stale: the reader must try its read
		{true, true, true, true, true},   // EAGAIN at seq: park, or it would spin
		{true, false, false, true, true}, // one P: the loop polls on timers
	} {
		lp.lateAt.Store(0)
		lp.multiP.Store(c.multiP)
		if c.starved {
			lp.lateAt.Store(max(int64(time.Since(lp.epoch)), 1))
		}
		d.r.drained = false
		d.Wrote()
		d.SetReadDrained(seq, c.certain)
		if c.wrote {
			d.Wrote()
		} else if !c.certain && d.wrote.Load() {
			t.Error("a short read did not clear wrote")
		}
		if got := d.ReadDrained(seq); got != c.want {
			t.Errorf("starved %v, several Ps %v, drained by EAGAIN %v, wrote since %v: ReadDrained = %v, want %v",
				c.starved, c.multiP, c.certain, c.wrote, got, c.want)
		}
		if d.ReadDrained(seq + 1) {
			t.Errorf("starved %v, drained by EAGAIN %v, wrote since %v: drained at a later seq",
				c.starved, c.certain, c.wrote)
		}
	}
	lp.lateAt.Store(0)
	lp.multiP.Store(false)
	d.SetReadDrained(seq, false)
	d.Wrote()
	if d.wrote.Load() {
		t.Error("Wrote stored while the loop was not starved (the hot path)")
	}
}
