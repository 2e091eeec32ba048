package netloop_test

import (
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netloop/netloop"
	"golang.org/x/sys/unix"
)

// secondRead reads what is queued, then reads again: the second Read must
// find the rest, whatever stopped the first one short.
func secondRead(t *testing.T, s net.Conn) string {
	buf := make([]byte, 8192)
	n, err := s.Read(buf)
	first := string(buf[:n]) + " " + errShape(err)
	s.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err = s.Read(buf)
	return "first: " + first + "\nsecond: " + string(buf[:n]) + " " + errShape(err)
}

// TCP urgent data stops a read at the urgent mark with more data queued
// and no new edge: the short read must not be taken for "drained".
func TestUrgentDataDoesNotStall(t *testing.T) {
	differential(t, func(t *testing.T, im impl) string {
		s, c := pipe(t, listen(t, im, "tcp4"))
		rc, _ := c.(*net.TCPConn).SyscallConn()
		c.Write([]byte("abc"))
		rc.Control(func(fd uintptr) { unix.Sendto(int(fd), []byte("X"), unix.MSG_OOB, nil) })
		c.Write([]byte("def"))
		time.Sleep(100 * time.Millisecond)
		return secondRead(t, s)
	})
}

// A unix stream read stops after a message carrying descriptors.
func TestUnixRightsDoNotStall(t *testing.T) {
	differential(t, func(t *testing.T, im impl) string {
		s, c := pipe(t, listen(t, im, "unix"))
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		c.(*net.UnixConn).WriteMsgUnix([]byte("A"), unix.UnixRights(int(f.Fd())), nil)
		c.Write([]byte("B"))
		time.Sleep(100 * time.Millisecond)
		return secondRead(t, s)
	})
}

// A connection dropped without Close is closed by the garbage collector,
// as package net's are.
func TestDroppedConnIsClosed(t *testing.T) {
	differential(t, func(t *testing.T, im impl) string {
		ln := listen(t, im, "tcp4")
		c := dial(t, ln)
		defer c.Close()
		func() {
			s, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			_ = s // dropped without Close
		}()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got := make(chan error, 1)
		go func() { _, err := c.Read(make([]byte, 1)); got <- err }()
		for i := 0; i < 50; i++ {
			runtime.GC()
			select {
			case err := <-got:
				return "peer read: " + errShape(err)
			case <-time.After(20 * time.Millisecond):
			}
		}
		return "peer read: " + errShape(<-got)
	})
}

// Closing with unread bytes resets the connection, as the kernel does,
// even when netloop had already pulled those bytes into a pooled buffer.
func TestCloseWithUnreadBytesResets(t *testing.T) {
	differential(t, func(t *testing.T, im impl) string {
		s, c := pipe(t, listen(t, im, "tcp4"))
		c.Write([]byte("hello world"))
		time.Sleep(50 * time.Millisecond)
		n, _ := s.Read(make([]byte, 5))
		s.Close()
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err := c.Read(make([]byte, 10))
		return strings.Repeat("r", n) + " then peer sees: " + errShape(err)
	})
}

// CloseRead wakes a Read blocked on the same connection.
func TestCloseReadWakesRead(t *testing.T) {
	for _, network := range []string{"tcp4", "unix"} {
		t.Run(network, func(t *testing.T) {
			differential(t, func(t *testing.T, im impl) string {
				s, _ := pipe(t, listen(t, im, network))
				ch := mustNotReturn(t, 50*time.Millisecond, "read", func() error { _, err := s.Read(make([]byte, 10)); return err })
				s.(interface{ CloseRead() error }).CloseRead()
				err := await(t, ch, 3*time.Second, "read after CloseRead")
				return "blocked read after CloseRead: " + errShape(err) + " eof=" + boolStr(err == io.EOF)
			})
		})
	}
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// TestCoalescedBytesBypassRawConn shows the one documented difference of
// the read path (see Conn.SyscallConn): a Read with a small slice may pull
// more bytes than it returns into a pooled buffer, and a RawConn.Read that
// reads the socket itself does not see them. They are not lost: the next
// Read returns them. With package net the RawConn would read " world!".
// The trade is deliberate: coalescing small reads saves a syscall per
// Read (BenchmarkReadSmall), and mixing Read with raw reads is rare.
func TestCoalescedBytesBypassRawConn(t *testing.T) {
	if !netloop.Native() {
		t.Skip("package-net backend: no coalescing")
	}
	s, c := pipe(t, listen(t, impls[1], "tcp4"))
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("hello world"))
	time.Sleep(50 * time.Millisecond)
	buf := make([]byte, 5)
	if n, err := s.Read(buf); err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Read: %q %v", buf[:n], err)
	}
	c.Write([]byte("!"))
	time.Sleep(50 * time.Millisecond)
	rc, _ := s.(interface {
		SyscallConn() (syscall.RawConn, error)
	}).SyscallConn()
	raw, _, _ := rawRead(rc, 64)
	if string(raw) != "!" {
		t.Errorf("RawConn.Read got %q, want the bytes after the coalesced ones: %q", raw, "!")
	}
	n, err := s.Read(make([]byte, 64))
	if err != nil || n != len(" world") {
		t.Errorf("the coalesced bytes were not returned by the next Read: n=%d %v", n, err)
	}
}
