package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// echoServer serves handle on each connection of a loopback listener until
// the test ends.
func echoServer(t *testing.T, handle func(n int, c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(n, c)
			}()
		}
	}()
	return ln.Addr().String()
}

type uringResult struct {
	hists      []hist
	bad        []int
	connErrors int
	err        error
	took       time.Duration
}

// runUringWatched runs the engine with a watchdog well beyond its own limit.
func runUringWatched(t *testing.T, addr string, conns int, dur, grace time.Duration, size int) uringResult {
	t.Helper()
	msg := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
	done := make(chan uringResult, 1)
	go func() {
		start := time.Now()
		var r uringResult
		r.hists, r.bad, r.connErrors, r.err = runUring(addr, conns, dur, grace, msg)
		r.took = time.Since(start)
		done <- r
	}()
	select {
	case r := <-done:
		checkSetup(t, r.err)
		return r
	case <-time.After(dur + grace + 10*time.Second):
		t.Fatal("runUring did not return")
		panic("unreachable")
	}
}

// checkSetup skips the test where the kernel has no io_uring with
// DEFER_TASKRUN and fails it on any other error.
func checkSetup(t *testing.T, err error) {
	t.Helper()
	if err != nil && (errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL)) && strings.Contains(err.Error(), "io_uring_setup") {
		t.Skipf("io_uring with DEFER_TASKRUN unavailable here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func total(r uringResult) (msgs uint64, bad int) {
	for i := range r.hists {
		msgs += r.hists[i].n
		bad += r.bad[i]
	}
	return msgs, bad
}

func TestUringEcho(t *testing.T) {
	addr := echoServer(t, func(_ int, c net.Conn) { io.Copy(c, c) })
	r := runUringWatched(t, addr, 8, 300*time.Millisecond, time.Second, 512)
	msgs, bad := total(r)
	if bad != 0 || r.connErrors != 0 {
		t.Fatalf("bad echoes %d, connection errors %d against a correct echo server", bad, r.connErrors)
	}
	for i := range r.hists {
		if r.hists[i].n == 0 {
			t.Errorf("connection %d completed no round trip", i)
		}
	}
	t.Logf("%d round trips", msgs)
}

// A server that echoes one byte at a time makes every receive short: the
// engine must ask for the rest, not count a partial echo.
func TestUringEchoTrickled(t *testing.T) {
	addr := echoServer(t, func(_ int, c net.Conn) {
		b := make([]byte, 1)
		for {
			if _, err := c.Read(b); err != nil {
				return
			}
			if _, err := c.Write(b); err != nil {
				return
			}
		}
	})
	r := runUringWatched(t, addr, 2, 200*time.Millisecond, time.Second, 64)
	msgs, bad := total(r)
	if bad != 0 || msgs == 0 {
		t.Fatalf("%d round trips, %d bad, against a correct server that answers a byte at a time", msgs, bad)
	}
}

// An echo with another message's bytes counts as bad, on that connection
// only, and ends that connection's run.
func TestUringWrongEcho(t *testing.T) {
	addr := echoServer(t, func(n int, c net.Conn) {
		buf := make([]byte, 512)
		for k := 0; ; k++ {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if n == 1 && k == 3 {
				buf[4]++ // the sequence number
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	r := runUringWatched(t, addr, 3, 300*time.Millisecond, time.Second, 512)
	if r.bad[1] != 1 || r.bad[0] != 0 || r.bad[2] != 0 {
		t.Fatalf("bad per connection %v, want [0 1 0]", r.bad)
	}
	if r.hists[1].n != 3 {
		t.Errorf("connection 1 counted %d round trips before the wrong echo, want 3", r.hists[1].n)
	}
}

// A server that stops answering cannot hold the client past its grace,
// and the run returns only once the kernel is done with its buffers.
func TestUringSilentServer(t *testing.T) {
	addr := echoServer(t, func(_ int, c net.Conn) { io.Copy(io.Discard, c) })
	diag = io.Discard // the engine describes each missing echo there
	var inFlight []int
	afterRun = func(cs []*uconn) {
		for i, c := range cs {
			if c.sending || c.receiving {
				inFlight = append(inFlight, i)
			}
		}
	}
	defer func() { diag, afterRun = os.Stderr, nil }()
	r := runUringWatched(t, addr, 4, 100*time.Millisecond, 300*time.Millisecond, 512)
	msgs, bad := total(r)
	if msgs != 0 || bad != 4 {
		t.Fatalf("%d round trips and %d bad against a server that never answers, want 0 and 4", msgs, bad)
	}
	if len(inFlight) > 0 {
		t.Errorf("returned with ops in flight on connections %v: the kernel could still write into their buffers", inFlight)
	}
	if r.took > 100*time.Millisecond+300*time.Millisecond+1500*time.Millisecond {
		t.Errorf("took %v, past the run and its grace", r.took)
	}
}

// Signals interrupt io_uring_enter (EINTR: Go's preemption signals do so
// whenever another thread runs): the engine must carry on, not count an
// interrupted call's failure as submissions.
func TestUringInterrupted(t *testing.T) {
	addr := echoServer(t, func(_ int, c net.Conn) { io.Copy(c, c) })
	msg := bytes.Repeat([]byte("0123456789abcdef"), 32)
	tids := make(chan int, 1)
	done := make(chan uringResult, 1)
	go func() {
		runtime.LockOSThread() // runUring locks again: this thread throughout
		defer runtime.UnlockOSThread()
		tids <- unix.Gettid()
		var r uringResult
		r.hists, r.bad, r.connErrors, r.err = runUring(addr, 4, 300*time.Millisecond, time.Second, msg)
		done <- r
	}()
	tid := <-tids
	tick := time.NewTicker(200 * time.Microsecond)
	defer tick.Stop()
	watchdog := time.After(10 * time.Second)
	signals := 0
	for {
		select {
		case r := <-done:
			checkSetup(t, r.err)
			msgs, bad := total(r)
			if bad != 0 || msgs == 0 {
				t.Fatalf("%d round trips, %d bad, with %d signals", msgs, bad, signals)
			}
			t.Logf("%d round trips with %d signals", msgs, signals)
			return
		case <-tick.C:
			unix.Tgkill(os.Getpid(), tid, unix.SIGURG)
			signals++
		case <-watchdog:
			t.Fatalf("runUring did not return (%d signals sent)", signals)
		}
	}
}
