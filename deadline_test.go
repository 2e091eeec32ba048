package netloop_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// mustReturn runs f and fails unless it returns within d; it returns f's
// error and how long it took.
func mustReturn(t *testing.T, d time.Duration, what string, f func() error) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	select {
	case err := <-ch:
		return time.Since(start), err
	case <-time.After(d):
		t.Fatalf("%s: still blocked after %v", what, d)
		return 0, nil
	}
}

// mustNotReturn starts f and fails if it returns within d; the returned
// channel yields f's result later.
func mustNotReturn(t *testing.T, d time.Duration, what string, f func() error) <-chan error {
	t.Helper()
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	select {
	case err := <-ch:
		t.Fatalf("%s: returned early: %v", what, err)
	case <-time.After(d):
	}
	return ch
}

func await(t *testing.T, ch <-chan error, d time.Duration, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(d):
		t.Fatalf("%s: did not return within %v", what, d)
		return nil
	}
}

// fill writes into c until its send path is full (a write deadline stops
// it) and returns how much went in.
func fill(t *testing.T, c net.Conn) int {
	t.Helper()
	total := 0
	buf := make([]byte, 64<<10)
	for {
		c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := c.Write(buf)
		total += n
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("fill: %v", err)
			}
			c.SetWriteDeadline(time.Time{})
			return total
		}
	}
}

func TestDeadlineInterruptsBlockedRead(t *testing.T) {
	// net/http does exactly this after every request (abortPendingRead).
	differential(t, func(t *testing.T, im impl) string {
		ln := listen(t, im, "tcp4")
		s, c := pipe(t, ln)
		var out []string
		buf := make([]byte, 10)

		// A past deadline set from another goroutine wakes a parked Read.
		ch := mustNotReturn(t, 50*time.Millisecond, "read without data", func() error { _, err := s.Read(buf); return err })
		s.SetReadDeadline(time.Unix(1, 0))
		out = append(out, "past deadline while blocked: "+errShape(await(t, ch, 2*time.Second, "read after past deadline")))

		// The connection stays usable: clear the deadline, data arrives.
		s.SetReadDeadline(time.Time{})
		c.Write([]byte("hello"))
		n, err := s.Read(buf)
		out = append(out, fmt.Sprintf("after clearing: %q %s", buf[:n], errShape(err)))

		// Moving a deadline nearer while blocked applies to that Read.
		s.SetReadDeadline(time.Now().Add(time.Hour))
		ch = mustNotReturn(t, 50*time.Millisecond, "read with far deadline", func() error { _, err := s.Read(buf); return err })
		s.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		out = append(out, "deadline moved nearer: "+errShape(await(t, ch, 2*time.Second, "read after nearer deadline")))

		// Moving it further away while blocked extends that Read.
		s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		start := time.Now()
		ech := make(chan error, 1)
		go func() { _, err := s.Read(buf); ech <- err }()
		time.Sleep(10 * time.Millisecond)
		s.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		err = await(t, ech, 3*time.Second, "read after extended deadline")
		if el := time.Since(start); el < 250*time.Millisecond {
			t.Errorf("extended deadline fired after %v", el)
		}
		out = append(out, "deadline extended: "+errShape(err))

		// Clearing the deadline while blocked: the Read waits for data.
		s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		ech = make(chan error, 1)
		go func() { n, err := s.Read(buf); ech <- fmt.Errorf("%q %v", buf[:n], err) }()
		time.Sleep(10 * time.Millisecond)
		s.SetReadDeadline(time.Time{})
		time.Sleep(150 * time.Millisecond)
		c.Write([]byte("late"))
		out = append(out, "deadline cleared while blocked: "+await(t, ech, 3*time.Second, "read after clear").Error())
		return strings.Join(out, "\n")
	})
}

func TestDeadlineInterruptsBlockedWrite(t *testing.T) {
	differential(t, func(t *testing.T, im impl) string {
		ln := listen(t, im, "tcp4")
		s, c := pipe(t, ln)
		var out []string
		fill(t, s)
		ch := mustNotReturn(t, 50*time.Millisecond, "write to a full socket", func() error {
			n, err := s.Write(make([]byte, 1<<20))
			if n == 1<<20 {
				return errors.New("whole write went through")
			}
			return err
		})
		s.SetWriteDeadline(time.Unix(1, 0))
		out = append(out, "past write deadline while blocked: "+errShape(await(t, ch, 2*time.Second, "write after deadline")))
		// Usable after the timeout: drain the peer, write again.
		s.SetWriteDeadline(time.Time{})
		go io.Copy(io.Discard, c)
		_, err := s.Write([]byte("more"))
		out = append(out, "write after clearing: "+errShape(err))
		return strings.Join(out, "\n")
	})
}

func TestDeadlineAccept(t *testing.T) {
	differential(t, func(t *testing.T, im impl) string {
		ln := listen(t, im, "tcp4")
		type deadliner interface{ SetDeadline(time.Time) error }
		var out []string
		ch := mustNotReturn(t, 50*time.Millisecond, "accept", func() error { _, err := ln.Accept(); return err })
		ln.(deadliner).SetDeadline(time.Now().Add(20 * time.Millisecond))
		out = append(out, "accept deadline while blocked: "+errShape(await(t, ch, 2*time.Second, "accept after deadline")))
		ln.(deadliner).SetDeadline(time.Time{})
		c := dial(t, ln)
		defer c.Close()
		s, err := ln.Accept()
		out = append(out, "accept after clearing: "+errShape(err))
		if s != nil {
			s.Close()
		}
		return strings.Join(out, "\n")
	})
}

func TestCloseUnblocks(t *testing.T) {
	differential(t, func(t *testing.T, im impl) string {
		ln := listen(t, im, "tcp4")
		s, _ := pipe(t, ln)
		var out []string
		fill(t, s)
		reads := make([]<-chan error, 3)
		for i := range reads {
			reads[i] = mustNotReturn(t, 0, "read", func() error { _, err := s.Read(make([]byte, 8)); return err })
		}
		write := mustNotReturn(t, 0, "write", func() error { _, err := s.Write(make([]byte, 1<<20)); return err })
		accept := mustNotReturn(t, 0, "accept", func() error { _, err := ln.Accept(); return err })
		time.Sleep(50 * time.Millisecond)
		el, err := mustReturn(t, 2*time.Second, "close", s.Close)
		out = append(out, "close: "+errShape(err))
		if el > time.Second {
			t.Errorf("Close took %v", el)
		}
		for _, ch := range reads {
			out = append(out, "blocked read: "+errShape(await(t, ch, 2*time.Second, "read after close")))
		}
		out = append(out, "blocked write: "+errShape(await(t, write, 2*time.Second, "write after close")))
		ln.Close()
		out = append(out, "blocked accept: "+errShape(await(t, accept, 2*time.Second, "accept after close")))
		return strings.Join(out, "\n")
	})
}
