//go:build !netloop_stdnet

package netloop

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"
)

func socketpair(t testing.TB) (a, b int) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	for _, fd := range fds {
		// Room for the largest write below in one call.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	return fds[0], fds[1]
}

// TestRawReadWrite: sysRead and sysWrite move every byte, to and from the
// right place, on both sides of rawMax (raw call below, the scheduler's
// hand-off above), and report errnos as x/sys's Read and Write do.
func TestRawReadWrite(t *testing.T) {
	a, b := socketpair(t)
	for _, size := range []int{1, 11, 4096, rawMax - 1, rawMax, rawMax + 1, 3 * rawMax} {
		want := make([]byte, size)
		for i := range want {
			want[i] = byte(i*7 + size)
		}
		n, err := sysWrite(a, want)
		if err != nil || n != size {
			t.Fatalf("size %d: sysWrite = %d, %v", size, n, err)
		}
		// Read through a window of the buffer, so that a call that used
		// the wrong address or length would show.
		buf := make([]byte, size+64)
		got := buf[32 : 32+size]
		n, err = sysRead(b, got)
		if err != nil || n != size {
			t.Fatalf("size %d: sysRead = %d, %v", size, n, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("size %d: bytes differ", size)
		}
		for i, c := range buf[:32] {
			if c != 0 || buf[32+size+i] != 0 {
				t.Fatalf("size %d: sysRead wrote outside its slice", size)
			}
		}
	}
	for _, size := range []int{16, rawMax + 1} {
		if n, err := sysRead(b, make([]byte, size)); err != unix.EAGAIN || n != 0 {
			t.Fatalf("read of an empty socket (%d bytes) = %d, %v; want 0, EAGAIN", size, n, err)
		}
	}
	if n, err := sysWrite(a, nil); err != nil || n != 0 {
		t.Fatalf("zero-length write = %d, %v", n, err)
	}
	if err := unix.Shutdown(a, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	if n, err := sysWrite(a, nil); err != unix.EPIPE || n != 0 {
		t.Fatalf("zero-length write after shutdown = %d, %v; want 0, EPIPE", n, err)
	}
	if n, err := sysRead(b, make([]byte, 16)); err != nil || n != 0 {
		t.Fatalf("read at EOF = %d, %v; want 0, nil", n, err)
	}
	if n, err := sysWrite(-1, []byte("x")); err != unix.EBADF || n != 0 {
		t.Fatalf("write to fd -1 = %d, %v; want 0, EBADF", n, err)
	}
}

// BenchmarkRawSyscall: what a read of an empty non-blocking socket costs
// through x/sys's Read (entersyscall and exitsyscall around the call) and
// through sysRead (raw), the reason for rawMax.
func BenchmarkRawSyscall(b *testing.B) {
	r, _ := socketpair(b)
	buf := make([]byte, 64)
	b.Run("x-sys", func(b *testing.B) {
		for b.Loop() {
			if _, err := unix.Read(r, buf); err != unix.EAGAIN {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		for b.Loop() {
			if _, err := sysRead(r, buf); err != unix.EAGAIN {
				b.Fatal(err)
			}
		}
	})
}
