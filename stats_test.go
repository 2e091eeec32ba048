package netloop_test

import (
	"errors"
	"expvar"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netloop/netloop"
)

var publishes atomic.Int32

func TestStatsKnownWorkload(t *testing.T) {
	defer watchdog(t, 20*time.Second, "stats")()
	before := netloop.ReadStats()
	lnI, err := netloop.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lnI.Close()
	ln := lnI.(*netloop.Listener)
	const conns, in, out = 20, 1000, 500
	var servers []net.Conn
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		s, c := pipeNoCleanup(t, ln)
		defer c.Close()
		servers = append(servers, s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The server reads before the client writes, so its Read parks.
			buf := make([]byte, in)
			if _, err := io.ReadFull(s, buf); err != nil {
				t.Error(err)
			}
			if _, err := s.Write(buf[:out]); err != nil {
				t.Error(err)
			}
		}()
		time.Sleep(time.Millisecond)
		c.Write(make([]byte, in))
		io.ReadFull(c, make([]byte, out))
	}
	wg.Wait()
	mid := ln.Stats()
	if mid.AcceptedConns != conns || mid.OpenConns != conns || mid.BytesRead != conns*in || mid.BytesWritten != conns*out {
		t.Errorf("listener stats while open: %+v", mid)
	}
	for _, s := range servers {
		s.Close()
		s.Close() // a second Close must not count twice
	}
	st := ln.Stats()
	if st.OpenConns != 0 || st.AcceptedConns != conns {
		t.Errorf("listener stats after closing: %+v", st)
	}
	after := netloop.ReadStats()
	if got := after.AcceptedConns - before.AcceptedConns; got != conns {
		t.Errorf("process accepted %d, want %d", got, conns)
	}
	if got := after.BytesRead - before.BytesRead; got != conns*in {
		t.Errorf("process read %d, want %d", got, conns*in)
	}
	if netloop.Native() {
		if after.Loops == 0 || after.LoopEvents <= before.LoopEvents || after.LoopWakeups == 0 {
			t.Errorf("loop figures did not move: before %+v after %+v", before, after)
		}
		var sum uint64
		for _, l := range after.PerLoop {
			sum += l.Events
		}
		// The loops may have stopped and started again during the test (when
		// an earlier test's last connection closed): the running loops'
		// figures are then part of the process's.
		if len(after.PerLoop) != after.Loops || sum > after.LoopEvents {
			t.Errorf("per-loop figures %+v exceed %d events over %d loops", after.PerLoop, after.LoopEvents, after.Loops)
		}
		if after.SyscallsAvoided <= before.SyscallsAvoided {
			t.Errorf("no read parked without a syscall: before %d after %d", before.SyscallsAvoided, after.SyscallsAvoided)
		}
	}
	// expvar names are process-wide and final: one per run (-count).
	name := fmt.Sprintf("netloop_test_stats_%d", publishes.Add(1))
	netloop.PublishExpvar(name)
	if v := expvar.Get(name); v == nil || !strings.Contains(v.String(), `"AcceptedConns"`) {
		t.Errorf("expvar: %v", v)
	}
}

func TestMaxConns(t *testing.T) {
	defer watchdog(t, 20*time.Second, "max conns")()
	lc := &netloop.ListenConfig{MaxConns: 2}
	ln, err := lc.Listen(t.Context(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s1, _ := pipe(t, ln)
	pipe(t, ln)
	c3 := dial(t, ln) // waits in the kernel's backlog
	defer c3.Close()
	type result struct {
		c   net.Conn
		err error
	}
	got := make(chan result, 1)
	go func() { c, err := ln.Accept(); got <- result{c, err} }()
	select {
	case r := <-got:
		t.Fatalf("Accept returned at the cap: %v %v", r.c, r.err)
	case <-time.After(100 * time.Millisecond):
	}
	s1.Close()
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatal(r.err)
		}
		defer r.c.Close()
		c3.Write([]byte("x"))
		if _, err := io.ReadFull(r.c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still waiting after a connection closed")
	}
	if w := ln.(*netloop.Listener).Stats().AcceptWaits; w < 1 {
		t.Errorf("AcceptWaits = %d", w)
	}

	// Waiting at the cap honours the deadline, then Close.
	ln.(*netloop.Listener).SetDeadline(time.Now().Add(50 * time.Millisecond))
	_, err = ln.Accept()
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Accept at the cap past its deadline: %v", err)
	}
	ln.(*netloop.Listener).SetDeadline(time.Time{})
	go func() { _, err := ln.Accept(); got <- result{nil, err} }()
	time.Sleep(50 * time.Millisecond)
	ln.Close()
	select {
	case r := <-got:
		if !errors.Is(r.err, net.ErrClosed) {
			t.Fatalf("Accept at the cap after Close: %v", r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake Accept waiting at the cap")
	}
}
