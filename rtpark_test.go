//go:build linux && !netloop_stdnet

package netloop_test

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/netloop/netloop"
)

// withRuntimePark runs f with every netloop Read that finds its socket
// empty waiting in the runtime's poller, on a duplicate of the socket, as
// it does while its loop is starved with more than one P.
func withRuntimePark(t *testing.T, f func(t *testing.T)) {
	netloop.SetParkInRuntime(true)
	keep := netloop.SetRuntimeParkKeep(0)
	defer func() {
		netloop.SetParkInRuntime(false)
		netloop.SetRuntimeParkKeep(keep)
	}()
	f(t)
}

// withRuntimeParkListener runs f as withRuntimePark does, with a netloop
// TCP listener, and then checks that no duplicate and no descriptor is
// left open.
func withRuntimeParkListener(t *testing.T, f func(ln net.Listener)) {
	before := openFDs(t)
	withRuntimePark(t, func(t *testing.T) {
		ln, err := netloop.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		f(ln)
	})
	if n := netloop.ReadStats().RuntimeParkFDs; n != 0 {
		t.Fatalf("%d duplicates counted open", n)
	}
	if after := openFDs(t); after != before {
		t.Fatalf("descriptors: %d before, %d after", before, after)
	}
}

var netloopImpl = impl{name: "netloop", listen: netloop.Listen}

// TestRuntimeParkConn runs nettest's conformance suite with netloop's
// readers waiting in the runtime's poller: deadlines (set before and
// while a reader waits), Close while a reader waits, concurrent Reads and
// Writes, and data integrity through the duplicate.
func TestRuntimeParkConn(t *testing.T) {
	withRuntimePark(t, func(t *testing.T) { nettestConn(t, netloopImpl, []string{"tcp4", "unix"}) })
}

// TestRuntimeParkWakes checks the two ways a reader waiting in the
// runtime's poller must be woken without bytes, as package net's is: a
// deadline set while it waits, and Close. It then checks that no
// descriptor (the duplicates) and no goroutine is left.
func TestRuntimeParkWakes(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	withRuntimeParkListener(t, func(ln net.Listener) {
		for _, how := range []string{"deadline", "close"} {
			s, c := pipe(t, ln)
			// A first read through the duplicate, then a wait on it.
			if _, err := c.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := s.Read(make([]byte, 8))
				done <- err
			}()
			time.Sleep(20 * time.Millisecond)
			if !netloop.RuntimeParkOpen(s) {
				t.Fatalf("%s: the reader does not wait on a duplicate", how)
			}
			start := time.Now()
			if how == "deadline" {
				s.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
			} else {
				s.Close()
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: Read still waits", how)
			}
			want := os.ErrDeadlineExceeded
			if how == "close" {
				want = net.ErrClosed
			}
			if !errors.Is(err, want) {
				t.Fatalf("%s: Read returned %v, want %v", how, err, want)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("%s: Read took %v to return", how, d)
			}
			if how == "deadline" {
				// The connection still works after the deadline.
				s.SetReadDeadline(time.Time{})
				go c.Write([]byte("yz"))
				if b, err := io.ReadAll(io.LimitReader(s, 2)); err != nil || string(b) != "yz" {
					t.Fatalf("after the deadline: %q, %v", b, err)
				}
				// Starvation over: the next wait is in the loop, and
				// the duplicate is closed.
				netloop.SetParkInRuntime(false)
				go func() {
					_, err := s.Read(make([]byte, 8))
					done <- err
				}()
				time.Sleep(20 * time.Millisecond)
				open := netloop.RuntimeParkOpen(s)
				c.Write([]byte("w"))
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				netloop.SetParkInRuntime(true)
				if open {
					t.Fatal("the duplicate stays open after the starvation")
				}
			}
			s.Close()
			c.Close()
			if netloop.RuntimeParkOpen(s) {
				t.Fatalf("%s: the duplicate is open after Close", how)
			}
		}
	})
}

// TestRuntimeParkCloseRace closes connections while their first Read is
// on its way into the runtime's poller: Close must neither wait forever
// for a reader that made its duplicate after Close began, nor leave a
// duplicate (and so the socket) open.
func TestRuntimeParkCloseRace(t *testing.T) {
	withRuntimeParkListener(t, func(ln net.Listener) {
		for i := range 300 {
			s, c := pipe(t, ln)
			done := make(chan error, 1)
			go func() {
				_, err := s.Read(make([]byte, 8))
				done <- err
			}()
			for range i % 8 {
				runtime.Gosched()
			}
			closed := make(chan struct{})
			go func() { s.Close(); close(closed) }()
			for _, ch := range []<-chan struct{}{closed, errDone(done)} {
				select {
				case <-ch:
				case <-time.After(5 * time.Second):
					t.Fatalf("round %d: Close or Read still waits", i)
				}
			}
			c.Close()
		}
	})
}

// errDone turns an error channel into a done channel.
func errDone(ch <-chan error) <-chan struct{} {
	d := make(chan struct{})
	go func() { <-ch; close(d) }()
	return d
}

// TestEveryPBusyParksInRuntime: with goroutines that never block holding
// both Ps, the loops notice that they are starved and their readers wait
// in the runtime's poller (Stats.RuntimeParks), the echo connections keep
// making progress, and Close leaves no duplicate open.
func TestEveryPBusyParksInRuntime(t *testing.T) {
	if testing.Short() {
		t.Skip("timed: runs 1 s with two spinning goroutines")
	}
	if !netloop.Native() {
		t.Skip("package net backend")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	defer spinHogs(2)()

	before := netloop.ReadStats()
	ln := listen(t, netloopImpl, "tcp4")
	// Read and Write, not splice(2) (which waits in the loop).
	stopServe := serveEach(ln, func(c net.Conn) { io.Copy(c, readerOnlyT{c}) })
	n := pingPong(t, ln, 20, time.Now().Add(time.Second))
	ln.Close()
	stopServe()
	after := netloop.ReadStats()
	t.Logf("%d round trips; starved waits %d, waits in the runtime's poller %d",
		n, after.LoopStarved-before.LoopStarved, after.RuntimeParks-before.RuntimeParks)
	if n == 0 {
		t.Fatal("no round trip with every P busy")
	}
	if after.RuntimeParks == before.RuntimeParks {
		t.Error("no reader waited in the runtime's poller (Stats.RuntimeParks)")
	}
	if after.RuntimeParkFDs != 0 {
		t.Errorf("%d duplicates open after every connection closed", after.RuntimeParkFDs)
	}
}

// TestRuntimeParkCap: beyond the cap on duplicates, readers wait in their
// loops as before, and every reader still gets its bytes; the count of
// open duplicates never exceeds the cap and returns to zero.
func TestRuntimeParkCap(t *testing.T) {
	defer netloop.SetRuntimeParkCap(netloop.SetRuntimeParkCap(2))
	withRuntimeParkListener(t, func(ln net.Listener) {
		const n = 5
		var servers, clients []net.Conn
		done := make(chan error, n)
		for range n {
			s, c := pipe(t, ln)
			servers, clients = append(servers, s), append(clients, c)
			go func() {
				b := make([]byte, 8)
				_, err := io.ReadFull(s, b[:3])
				done <- err
			}()
		}
		time.Sleep(50 * time.Millisecond) // every reader waits
		if got := netloop.ReadStats().RuntimeParkFDs; got != 2 {
			t.Errorf("%d duplicates open with %d readers waiting and a cap of 2", got, n)
		}
		for _, c := range clients {
			if _, err := c.Write([]byte("abc")); err != nil {
				t.Fatal(err)
			}
		}
		for range n {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("a reader did not get its bytes")
			}
		}
		for i := range servers {
			servers[i].Close()
			clients[i].Close()
		}
	})
}
