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
	forEach(t, func(t *testing.T, im impl) { nettestConn(t, im, networks(t)) })
}

// nettestConn runs nettest.TestConn on im's connections over each of
// networks, with either end as the first.
func nettestConn(t *testing.T, im impl, networks []string) {
	for _, network := range networks {
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

// normalize removes what legitimately differs between two runs of the same
// case (ports and temporary paths).
func normalize(s string, subs ...string) string {
	for i := 0; i+1 < len(subs); i += 2 {
		if subs[i] != "" {
			s = strings.ReplaceAll(s, subs[i], subs[i+1])
		}
	}
	return s
}

func TestListenErrors(t *testing.T) {
	// A port in use, held by package net for both implementations.
	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyAddr := busy.Addr().String()
	dir := t.TempDir()
	busyPath := filepath.Join(dir, "busy")
	ub, err := net.Listen("unix", busyPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ub.Close()

	cases := []struct {
		name, network, address string
	}{
		{name: "udp", network: "udp", address: "127.0.0.1:0"},
		{name: "unknown network", network: "bogus", address: "127.0.0.1:0"},
		{name: "bad port", network: "tcp", address: "127.0.0.1:99999"},
		{name: "missing port", network: "tcp", address: "127.0.0.1"},
		{name: "bad host", network: "tcp4", address: "256.0.0.1:0"},
		{name: "v6 on tcp4", network: "tcp4", address: "[::1]:0"},
		{name: "port in use", network: "tcp4", address: busyAddr},
		{name: "unix no dir", network: "unix", address: filepath.Join(dir, "nodir", "s")},
		{name: "unix in use", network: "unix", address: busyPath},
		{name: "unixgram", network: "unixgram", address: filepath.Join(dir, "g")},
		{name: "ip", network: "ip4:icmp", address: "127.0.0.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			differential(t, func(t *testing.T, im impl) string {
				ln, err := im.listen(tc.network, tc.address)
				if err == nil {
					ln.Close()
					return "no error"
				}
				return fmt.Sprintf("%T %q %s", err, err.Error(), errShape(err))
			})
		})
	}
}

func TestListenNetworks(t *testing.T) {
	cases := []struct{ network, address string }{
		{network: "tcp", address: ":0"},
		{network: "tcp", address: "127.0.0.1:0"},
		{network: "tcp", address: "localhost:0"},
		{network: "tcp4", address: "127.0.0.1:0"},
		{network: "tcp6", address: "[::1]:0"},
		{network: "unix"},
		{network: "unixpacket"},
	}
	for _, tc := range cases {
		t.Run(tc.network+"/"+tc.address, func(t *testing.T) {
			if tc.network == "tcp6" && !nettest.SupportsIPv6() {
				t.Skip("no IPv6")
			}
			differential(t, func(t *testing.T, im impl) string {
				defer watchdog(t, 20*time.Second, "listen networks")()
				addr := tc.address
				if addr == "" {
					addr = address(t, tc.network)
				}
				ln, err := im.listen(tc.network, addr)
				if err != nil {
					t.Fatal(err)
				}
				s, c := pipe(t, ln)
				var out []string
				out = append(out, fmt.Sprintf("listener addr %s %s", addrShape(ln.Addr()), ln.Addr().Network()))
				out = append(out, fmt.Sprintf("local %s remote %s", addrShape(s.LocalAddr()), addrShape(s.RemoteAddr())))
				if ta, ok := s.LocalAddr().(*net.TCPAddr); ok {
					if ca := c.RemoteAddr().(*net.TCPAddr); !ta.IP.Equal(ca.IP) || ta.Port != ca.Port {
						t.Errorf("server local %v, client remote %v", ta, ca)
					}
					if sa, ca := s.RemoteAddr().(*net.TCPAddr), c.LocalAddr().(*net.TCPAddr); !sa.IP.Equal(ca.IP) || sa.Port != ca.Port {
						t.Errorf("server remote %v, client local %v", sa, ca)
					}
				} else {
					out = append(out, fmt.Sprintf("unix local %q remote %q", normalize(s.LocalAddr().String(), addr, "PATH"), s.RemoteAddr().String()))
				}
				// Echo both ways, message by message.
				for _, msg := range []string{"a", "hello", strings.Repeat("z", 3000)} {
					if _, err := c.Write([]byte(msg)); err != nil {
						t.Fatal(err)
					}
					buf := make([]byte, len(msg))
					if _, err := io.ReadFull(s, buf); err != nil || string(buf) != msg {
						t.Fatalf("server read %q, %v", buf, err)
					}
					if _, err := s.Write(buf); err != nil {
						t.Fatal(err)
					}
					if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
						t.Fatalf("client read %q, %v", buf, err)
					}
				}
				if tc.network == "unix" || tc.network == "unixpacket" {
					if _, err := os.Stat(addr); err != nil {
						t.Fatalf("socket file missing while listening: %v", err)
					}
					ln.Close()
					_, err := os.Stat(addr)
					out = append(out, fmt.Sprintf("socket file removed on Close: %v", os.IsNotExist(err)))
				} else {
					ln.Close()
				}
				// Listener.Close leaves accepted connections open.
				if _, err := c.Write([]byte("after")); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 5)
				if _, err := io.ReadFull(s, buf); err != nil {
					t.Fatalf("accepted conn broken by Listener.Close: %v", err)
				}
				return strings.Join(out, "\n")
			})
		})
	}
}

// TestUnixpacketMessages checks that message boundaries survive: a short
// Read on a SOCK_SEQPACKET socket truncates the message, as package net
// does, rather than coalescing it.
func TestUnixpacketMessages(t *testing.T) {
	differential(t, func(t *testing.T, im impl) string {
		defer watchdog(t, 10*time.Second, "unixpacket")()
		ln := listen(t, im, "unixpacket")
		s, c := pipe(t, ln)
		for _, m := range []string{"first message", "second", "third one"} {
			if _, err := c.Write([]byte(m)); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
		var out []string
		for i := 0; i < 4; i++ {
			buf := make([]byte, 5)
			n, err := s.Read(buf)
			out = append(out, fmt.Sprintf("%q %s", buf[:n], errShape(err)))
		}
		return strings.Join(out, "\n")
	})
}

// TestNoBackgroundAccept: a connection stays in the kernel's backlog until
// Accept is called, so closing a listener that never accepted resets the
// waiting client (a listener that accepted in the background would instead
// hold the connection open).
func TestNoBackgroundAccept(t *testing.T) {
	differential(t, func(t *testing.T, im impl) string {
		defer watchdog(t, 10*time.Second, "no background accept")()
		ln := listen(t, im, "tcp4")
		c := dial(t, ln)
		defer c.Close()
		time.Sleep(50 * time.Millisecond)
		ln.Close()
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, err := c.Read(make([]byte, 1))
		return "client read after the listener closed unaccepted: " + errShape(err)
	})
}

func TestFileListenerRoundTrip(t *testing.T) {
	fileListener := map[string]func(*os.File) (net.Listener, error){"net": net.FileListener, "netloop": netloop.FileListener}
	for _, network := range []string{"tcp4", "unix"} {
		t.Run(network, func(t *testing.T) {
			differential(t, func(t *testing.T, im impl) string {
				defer watchdog(t, 10*time.Second, "file listener")()
				ln := listen(t, im, network)
				f, err := ln.(interface{ File() (*os.File, error) }).File()
				if err != nil {
					t.Fatal(err)
				}
				// Hand the socket over, as a restarting server does: the
				// old listener closes, the new one keeps accepting.
				addr := ln.Addr()
				if ul, ok := ln.(interface{ SetUnlinkOnClose(bool) }); ok {
					ul.SetUnlinkOnClose(false)
				}
				ln.Close()
				ln2, err := fileListener[im.name](f)
				f.Close()
				if err != nil {
					t.Fatal(err)
				}
				defer ln2.Close()
				var out []string
				out = append(out, fmt.Sprintf("addr kept %v %s", ln2.Addr().String() == addr.String(), addrShape(ln2.Addr())))
				s, c := pipe(t, ln2)
				c.Write([]byte("through the inherited socket"))
				buf := make([]byte, 28)
				_, err = io.ReadFull(s, buf)
				out = append(out, fmt.Sprintf("%q %s", buf, errShape(err)))
				ln2.Close()
				if network == "unix" {
					_, err := os.Stat(addr.String())
					out = append(out, fmt.Sprintf("socket file kept after closing a file listener: %v", err == nil))
					os.Remove(addr.String())
				}
				_, err = fileListener[im.name](os.Stdin)
				out = append(out, "file listener on a non-socket: "+errShape(err))
				return strings.Join(out, "\n")
			})
		})
	}
}
