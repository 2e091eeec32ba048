//go:build linux

package uringprobe

import (
	"testing"
	"unsafe"

	"github.com/netloop/netloop/poll"
	"golang.org/x/sys/unix"
)

// newRing opens a ring of n entries, or skips where batched sends are
// unavailable (old kernel, sandbox, kernel.io_uring_disabled).
func newRing(t testing.TB, n uint32) *poll.Ring {
	r, err := poll.OpenRing(n)
	if err != nil {
		t.Skipf("no batched sends here: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// sendAll sends msg on every fd with one io_uring_enter.
func sendAll(t testing.TB, r *poll.Ring, ops []poll.Op, fds []int, msg []byte) {
	for i, fd := range fds {
		ops[i] = poll.Op{FD: fd, P: msg}
	}
	if err := r.Do(ops[:len(fds)]); err != nil {
		t.Fatal(err)
	}
	for _, op := range ops[:len(fds)] {
		if op.N != len(msg) {
			t.Fatalf("send: %d %v", op.N, op.Err)
		}
	}
}

// pairs returns n connected TCP loopback sockets: the accepted ends
// (non-blocking, TCP_NODELAY, as a server's) and the dialled ends.
func pairs(t testing.TB, n int) (srv, cli []int) {
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ln)
	if err := unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(ln, 128); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(ln)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Connect(c, sa); err != nil {
			t.Fatal(err)
		}
		s, _, err := unix.Accept(ln)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(s); unix.Close(c) })
		unix.SetNonblock(s, true)
		unix.SetsockoptInt(s, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		unix.SetNonblock(c, true)
		srv, cli = append(srv, s), append(cli, c)
	}
	return
}

// drain reads what is queued on each socket and returns the byte count.
func drain(cli []int, buf []byte) int {
	total := 0
	for _, c := range cli {
		r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(c), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
		if e == 0 {
			total += int(r)
		}
	}
	return total
}

// BenchmarkBatch24: per op, 24 sends of 11 bytes (one per connection, the
// size of a loop batch at 50 connections), then the peers drain them (the
// same in every variant; drain-only measures reads that find nothing). Run
// pinned: taskset -c 0 go test -run '^$' -bench . -cpu 1 ./bench/uringprobe
func BenchmarkBatch24(b *testing.B) {
	srv, cli := pairs(b, 24)
	msg := []byte("hello world")
	buf := make([]byte, 4096)
	b.Run("write", func(b *testing.B) {
		for b.Loop() {
			for _, s := range srv {
				unix.RawSyscall(unix.SYS_WRITE, uintptr(s), uintptr(unsafe.Pointer(&msg[0])), uintptr(len(msg)))
			}
			drain(cli, buf)
		}
	})
	r := newRing(b, 64)
	ops := make([]poll.Op, len(srv))
	b.Run("io_uring", func(b *testing.B) {
		for b.Loop() {
			sendAll(b, r, ops, srv, msg)
			drain(cli, buf)
		}
	})
	b.Run("drain-only", func(b *testing.B) {
		for b.Loop() {
			drain(cli, buf)
		}
	})
}
