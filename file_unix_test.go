//go:build unix

package netloop_test

import (
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFileAndSyscallConn(t *testing.T) {
	differential(t, func(t *testing.T, im impl) string {
		ln := listen(t, im, "tcp4")
		s, c := pipe(t, ln)
		var out []string
		f, err := s.(interface{ File() (*os.File, error) }).File()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, "file name shape: "+normalize(f.Name(), s.LocalAddr().String(), "L", s.RemoteAddr().String(), "R"))
		// The duplicate is independent: write through it, close it, and the
		// original keeps working.
		if _, err := f.Write([]byte("via file ")); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if _, err := s.Write([]byte("via conn")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 17)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadFull(c, buf)
		out = append(out, fmt.Sprintf("peer read %q %s", buf, errShape(err)))

		// RawConn.Read waits for readiness between calls.
		rc, err := s.(syscall.Conn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		go func() { time.Sleep(30 * time.Millisecond); c.Write([]byte("raw")) }()
		got, calls, err := rawRead(rc, 16)
		out = append(out, fmt.Sprintf("raw read %q %s, called more than once %v", got, errShape(err), calls > 1))
		err = rc.Write(func(fd uintptr) bool {
			_, err := syscall.Write(int(fd), []byte("!"))
			return err != syscall.EAGAIN
		})
		out = append(out, "raw write: "+errShape(err))

		lf, err := ln.(interface{ File() (*os.File, error) }).File()
		out = append(out, "listener file: "+errShape(err))
		if lf != nil {
			out = append(out, "listener file name: "+normalize(lf.Name(), ln.Addr().String(), "L"))
			lf.Close()
		}
		lrc, err := ln.(syscall.Conn).SyscallConn()
		out = append(out, "listener syscallconn: "+errShape(err))
		out = append(out, "listener raw control: "+errShape(lrc.Control(func(uintptr) {})))
		out = append(out, "listener raw read: "+errShape(lrc.Read(func(uintptr) bool { return true })))
		return strings.Join(out, "\n")
	})
}

// rawRead reads the socket once through rc, as a caller of SyscallConn
// would: the callback asks to wait while read(2) says EAGAIN. It returns
// what was read and how often the callback ran.
func rawRead(rc syscall.RawConn, size int) (got []byte, calls int, err error) {
	err = rc.Read(func(fd uintptr) bool {
		calls++
		b := make([]byte, size)
		n, err := syscall.Read(int(fd), b)
		if err == syscall.EAGAIN {
			return false
		}
		got = append(got, b[:max(n, 0)]...)
		return true
	})
	return got, calls, err
}
