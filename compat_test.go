package netloop_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netloop/netloop"
	"golang.org/x/net/nettest"
)

// impl is one implementation under test: every case in this file runs
// against package net and against netloop, and the two must agree.
type impl struct {
	name   string
	listen func(network, address string) (net.Listener, error)
}

var impls = []impl{
	{name: "net", listen: net.Listen},
	{name: "netloop", listen: netloop.Listen},
}

// forEach runs f as a subtest for every implementation.
func forEach(t *testing.T, f func(t *testing.T, im impl)) {
	t.Helper()
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) { f(t, im) })
	}
}

// networks are the stream networks tested on this machine.
func networks(t *testing.T) []string {
	ns := []string{"tcp4", "unix"}
	if nettest.SupportsIPv6() {
		ns = append(ns, "tcp6")
	}
	return ns
}

// address returns a loopback (or temporary unix) address for network.
func address(t *testing.T, network string) string {
	t.Helper()
	switch network {
	case "tcp", "tcp4":
		return "127.0.0.1:0"
	case "tcp6":
		return "[::1]:0"
	case "unix", "unixpacket":
		dir, err := os.MkdirTemp("", "netloop")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		return filepath.Join(dir, "s")
	}
	t.Fatalf("no address for %q", network)
	return ""
}

// listen opens a listener of im on network, closed by t.Cleanup.
func listen(t *testing.T, im impl, network string) net.Listener {
	t.Helper()
	ln, err := im.listen(network, address(t, network))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dial connects a package-net client to ln.
func dial(t testing.TB, ln net.Listener) net.Conn {
	t.Helper()
	c, err := net.Dial(ln.Addr().Network(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pipe returns the accepted (server) side and the dialled (client) side of
// one connection on ln; both are closed by t.Cleanup.
func pipe(t testing.TB, ln net.Listener) (server, client net.Conn) {
	t.Helper()
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		ch <- result{c, err}
	}()
	client = dial(t, ln)
	var r result
	select {
	case r = <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("Accept did not return")
	}
	if r.err != nil {
		client.Close()
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.c.Close(); client.Close() })
	return r.c, client
}

// makePipe adapts pipe to nettest.MakePipe; serverFirst picks which end is
// c1 (nettest drives most operations through c1).
func makePipe(im impl, network, addr string, serverFirst bool) nettest.MakePipe {
	return func() (c1, c2 net.Conn, stop func(), err error) {
		ln, err := im.listen(network, addr)
		if err != nil {
			return nil, nil, nil, err
		}
		defer ln.Close()
		done := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			done <- c
		}()
		client, err := net.Dial(ln.Addr().Network(), ln.Addr().String())
		if err != nil {
			return nil, nil, nil, err
		}
		server := <-done
		if server == nil {
			client.Close()
			return nil, nil, nil, errors.New("accept failed")
		}
		stop = func() { server.Close(); client.Close() }
		if serverFirst {
			return server, client, stop, nil
		}
		return client, server, stop, nil
	}
}

func TestNettestConn(t *testing.T) {
	forEach(t, func(t *testing.T, im impl) {
		for _, network := range networks(t) {
			for _, serverFirst := range []bool{true, false} {
				name := network + "/client-first"
				if serverFirst {
					name = network + "/server-first"
				}
				t.Run(name, func(t *testing.T) {
					addr := address(t, network)
					if network == "unix" {
						// one path per pipe: nettest opens several.
						dir := filepath.Dir(addr)
						var mu sync.Mutex
						n := 0
						mp := func() (net.Conn, net.Conn, func(), error) {
							mu.Lock()
							n++
							a := filepath.Join(dir, fmt.Sprintf("s%d", n))
							mu.Unlock()
							return makePipe(im, network, a, serverFirst)()
						}
						nettest.TestConn(t, mp)
						return
					}
					nettest.TestConn(t, makePipe(im, network, addr, serverFirst))
				})
			}
		}
	})
}

// watchdog fails the test if done is not closed within d.
func watchdog(t *testing.T, d time.Duration, what string) (done func()) {
	t.Helper()
	ch := make(chan struct{})
	timer := time.AfterFunc(d, func() {
		select {
		case <-ch:
		default:
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			panic(fmt.Sprintf("%s: did not finish within %v\n%s", what, d, buf[:n]))
		}
	})
	return func() { timer.Stop(); close(ch) }
}

// errShape describes an error layer by layer, so that net and netloop
// errors can be compared field by field.
func errShape(err error) string {
	if err == nil {
		return "nil"
	}
	var b strings.Builder
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch e := e.(type) {
		case *net.OpError:
			fmt.Fprintf(&b, "OpError{Op:%s Net:%s Source:%v Addr:%v}/", e.Op, e.Net, addrShape(e.Source), addrShape(e.Addr))
		case *os.SyscallError:
			fmt.Fprintf(&b, "SyscallError{%s}/", e.Syscall)
		case syscall.Errno:
			fmt.Fprintf(&b, "Errno(%d)/", int(e))
		default:
			fmt.Fprintf(&b, "%T(%v)/", e, e)
		}
	}
	if ne, ok := err.(net.Error); ok {
		fmt.Fprintf(&b, " timeout=%v", ne.Timeout())
	}
	fmt.Fprintf(&b, " closed=%v deadline=%v eof=%v", errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrDeadlineExceeded), err == io.EOF)
	return b.String()
}

// addrShape shows an address's type and whether it is set, not its port
// (which differs between two listeners).
func addrShape(a net.Addr) string {
	switch a := a.(type) {
	case nil:
		return "nil"
	case *net.TCPAddr:
		return fmt.Sprintf("TCPAddr(%d-byte IP)", len(a.IP))
	case *net.UnixAddr:
		return "UnixAddr(" + a.Net + ")"
	}
	return fmt.Sprintf("%T", a)
}

// differential runs f against every implementation and requires the same
// string result from each.
func differential(t *testing.T, f func(t *testing.T, im impl) string) {
	t.Helper()
	got := map[string]string{}
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) { got[im.name] = f(t, im) })
	}
	if got["net"] != got["netloop"] {
		t.Errorf("net and netloop differ:\nnet:     %s\nnetloop: %s", got["net"], got["netloop"])
	}
}

func TestErrorShapes(t *testing.T) {
	for _, network := range networks(t) {
		t.Run(network, func(t *testing.T) {
			differential(t, func(t *testing.T, im impl) string {
				defer watchdog(t, 20*time.Second, "error shapes")()
				ln := listen(t, im, network)
				s, c := pipe(t, ln)
				var out []string
				rec := func(what string, err error) { out = append(out, what+": "+errShape(err)) }

				// EOF after the peer closes, data first.
				c.Write([]byte("x"))
				c.Close()
				buf := make([]byte, 8)
				n, err := io.ReadFull(s, buf[:1])
				rec(fmt.Sprintf("read data n=%d", n), err)
				n, err = s.Read(buf)
				rec(fmt.Sprintf("read at EOF n=%d", n), err)
				n, err = s.Read(buf[:0])
				rec(fmt.Sprintf("zero read n=%d", n), err)

				// Timeouts.
				s2, _ := pipe(t, ln)
				s2.SetReadDeadline(time.Now().Add(-time.Second))
				_, err = s2.Read(buf)
				rec("read past deadline", err)
				s2.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
				_, err = s2.Read(buf)
				rec("read future deadline", err)
				s2.SetWriteDeadline(time.Now().Add(-time.Second))
				_, err = s2.Write(buf)
				rec("write past deadline", err)

				// Use after close and double close.
				rec("close", s.Close())
				rec("second close", s.Close())
				_, err = s.Read(buf)
				rec("read after close", err)
				_, err = s.Read(buf[:0])
				rec("zero read after close", err)
				_, err = s.Write(buf)
				rec("write after close", err)
				rec("set deadline after close", s.SetDeadline(time.Now()))
				rec("set read deadline after close", s.SetReadDeadline(time.Now()))
				// *netloop.Conn serves both TCP and unix sockets, so it has
				// SetNoDelay where *net.UnixConn has not: ask only of TCP.
				if tc, ok := s.(interface{ SetNoDelay(bool) error }); ok && strings.HasPrefix(network, "tcp") {
					rec("set no delay after close", tc.SetNoDelay(true))
				}
				if cw, ok := s.(interface{ CloseWrite() error }); ok {
					rec("close write after close", cw.CloseWrite())
				}
				if sc, ok := s.(syscall.Conn); ok {
					rc, err := sc.SyscallConn()
					rec("syscall conn after close", err)
					rec("raw control after close", rc.Control(func(uintptr) {}))
					rec("raw read after close", rc.Read(func(uintptr) bool { return true }))
				}
				rec("set read buffer after close", s.(interface{ SetReadBuffer(int) error }).SetReadBuffer(1024))
				_, err = s.(interface{ File() (*os.File, error) }).File()
				rec("file after close", err)

				// Listener: deadline, then close.
				type deadliner interface{ SetDeadline(time.Time) error }
				ln.(deadliner).SetDeadline(time.Now().Add(-time.Second))
				_, err = ln.Accept()
				rec("accept past deadline", err)
				ln.(deadliner).SetDeadline(time.Time{})
				rec("listener close", ln.Close())
				rec("listener second close", ln.Close())
				_, err = ln.Accept()
				rec("accept after close", err)
				rec("listener set deadline after close", ln.(deadliner).SetDeadline(time.Now()))
				return strings.Join(out, "\n")
			})
		})
	}
}
