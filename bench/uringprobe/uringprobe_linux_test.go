//go:build linux

package uringprobe

import (
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's io_uring ABI (include/uapi/linux/io_uring.h): the setup
// parameters, a submission queue entry and a completion queue entry.
type params struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  struct {
		head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
		userAddr                                                        uint64
	}
	cqOff struct {
		head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
		userAddr                                                        uint64
	}
}

type sqe struct {
	opcode, flags uint8
	ioprio        uint16
	fd            int32
	off, addr     uint64
	len, opFlags  uint32
	userData      uint64
	pad           [3]uint64
}

type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

type ring struct {
	fd                     int
	sqHead, sqTail, sqMask *uint32
	sqArray                []uint32
	sqes                   []sqe
	cqHead, cqTail, cqMask *uint32
	cqes                   []cqe
}

// newRing sets up a ring of n entries and maps its queues; it skips the
// test or benchmark where io_uring is unavailable (old kernel, sandbox,
// kernel.io_uring_disabled).
func newRing(t testing.TB, n uint32) *ring {
	var p params
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(n), uintptr(unsafe.Pointer(&p)), 0)
	if e != 0 {
		t.Skipf("io_uring_setup: %v", e)
	}
	t.Cleanup(func() { unix.Close(int(fd)) })
	sqSize := int(p.sqOff.array + p.sqEntries*4)
	cqSize := int(p.cqOff.cqes + p.cqEntries*16)
	if cqSize > sqSize {
		sqSize = cqSize
	}
	rb, err := unix.Mmap(int(fd), 0, sqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := unix.Mmap(int(fd), 0x10000000, int(p.sqEntries)*64, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		t.Fatal(err)
	}
	base := unsafe.Pointer(&rb[0])
	r := &ring{fd: int(fd)}
	r.sqHead = (*uint32)(unsafe.Add(base, p.sqOff.head))
	r.sqTail = (*uint32)(unsafe.Add(base, p.sqOff.tail))
	r.sqMask = (*uint32)(unsafe.Add(base, p.sqOff.ringMask))
	r.sqArray = unsafe.Slice((*uint32)(unsafe.Add(base, p.sqOff.array)), p.sqEntries)
	r.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(&sb[0])), p.sqEntries)
	r.cqHead = (*uint32)(unsafe.Add(base, p.cqOff.head))
	r.cqTail = (*uint32)(unsafe.Add(base, p.cqOff.tail))
	r.cqMask = (*uint32)(unsafe.Add(base, p.cqOff.ringMask))
	r.cqes = unsafe.Slice((*cqe)(unsafe.Add(base, p.cqOff.cqes)), p.cqEntries)
	return r
}

const opSend = 26

// sendAll submits one send per fd and waits for all completions with one
// io_uring_enter.
func (r *ring) sendAll(t testing.TB, fds []int, msg []byte) {
	tail := atomic.LoadUint32(r.sqTail)
	mask := *r.sqMask
	for i, fd := range fds {
		idx := (tail + uint32(i)) & mask
		r.sqes[idx] = sqe{opcode: opSend, fd: int32(fd), addr: uint64(uintptr(unsafe.Pointer(&msg[0]))), len: uint32(len(msg)), userData: uint64(i)}
		r.sqArray[idx] = idx
	}
	atomic.StoreUint32(r.sqTail, tail+uint32(len(fds)))
	n := uintptr(len(fds))
	_, _, e := unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), n, n, 1 /* GETEVENTS */, 0, 0)
	if e != 0 {
		t.Fatal(e)
	}
	head := atomic.LoadUint32(r.cqHead)
	ctail := atomic.LoadUint32(r.cqTail)
	for ; head != ctail; head++ {
		c := r.cqes[head&*r.cqMask]
		if c.res != int32(len(msg)) {
			t.Fatalf("send res %d", c.res)
		}
	}
	atomic.StoreUint32(r.cqHead, head)
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

// TestSendAll: one io_uring_enter sends on every connection, and each
// peer receives exactly its message.
func TestSendAll(t *testing.T) {
	srv, cli := pairs(t, 24)
	r := newRing(t, 64)
	msg := []byte("hello world")
	for round := range 3 {
		r.sendAll(t, srv, msg)
		deadline := time.Now().Add(10 * time.Second)
		got := 0
		buf := make([]byte, 64)
		for got < len(srv)*len(msg) && time.Now().Before(deadline) {
			got += drain(cli, buf)
		}
		if got != len(srv)*len(msg) {
			t.Fatalf("round %d: peers received %d bytes, want %d", round, got, len(srv)*len(msg))
		}
	}
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
	b.Run("io_uring", func(b *testing.B) {
		for b.Loop() {
			r.sendAll(b, srv, msg)
			drain(cli, buf)
		}
	})
	b.Run("drain-only", func(b *testing.B) {
		for b.Loop() {
			drain(cli, buf)
		}
	})
}
