package poll

import (
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's io_uring ABI (include/uapi/linux/io_uring.h): the setup
// parameters, a submission queue entry and a completion queue entry.
type uringParams struct {
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

type uringSQE struct {
	opcode, flags uint8
	ioprio        uint16
	fd            int32
	off, addr     uint64
	len, opFlags  uint32
	userData      uint64
	pad           [3]uint64
}

type uringCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

const (
	uringOpSend       = 26         // IORING_OP_SEND
	uringOpRecv       = 27         // IORING_OP_RECV
	uringOpCancel     = 14         // IORING_OP_ASYNC_CANCEL
	uringCancelBit    = 1 << 31    // in user_data: a cancellation's own completion
	uringSetupSubmAll = 1 << 7     // IORING_SETUP_SUBMIT_ALL: go on past a failed entry
	uringEnterGetEvts = 1          // IORING_ENTER_GETEVENTS
	uringOffSQEs      = 0x10000000 // IORING_OFF_SQES

	// rawBytes bounds the bytes a batch may move in a raw io_uring_enter,
	// without the scheduler hand-off, counting each receive's whole buffer
	// (an upper bound: requests are mostly far shorter than net/http's
	// 4 KiB buffers). Copying 1 MiB takes about 100 µs here, so a raw
	// batch holds its P no longer than a short stretch of Go code, while
	// the hand-off, on a call that long, would let sysmon move the P to
	// another thread (see the root package's rawMax).
	rawBytes = 1 << 20
)

// Ring is an io_uring instance used for one thing: submitting a batch of
// non-blocking sends and receives with one io_uring_enter instead of one
// write(2) or read(2) each. Every op carries MSG_DONTWAIT, which makes the
// kernel complete it during the submission itself, with the bytes it
// could move or -EAGAIN, instead of arming a poll and completing it later;
// so a batch never leaves anything in flight once Do returns, and the
// ring needs no completion notification. A Ring is used by one goroutine
// at a time.
type Ring struct {
	fd                     int
	entries                uint32
	sqHead, sqTail, sqMask *uint32
	sqArray                []uint32
	sqes                   []uringSQE
	cqHead, cqTail, cqMask *uint32
	cqes                   []uringCQE
	maps                   [2][]byte
	seq                    uint32 // batches sent: the high half of user_data
	msgFlags               uint32 // MSG_DONTWAIT (tests take it away to leave ops in flight)
}

// OpenRing sets up a ring for batches of up to entries sends. It fails
// where io_uring is unavailable (kernels before 5.18, which lack
// IORING_SETUP_SUBMIT_ALL; seccomp sandboxes; kernel.io_uring_disabled)
// or lacks what Do needs.
func OpenRing(entries uint32) (*Ring, error) {
	var p uringParams
	p.flags = uringSetupSubmAll
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if e != 0 {
		return nil, os.NewSyscallError("io_uring_setup", e)
	}
	r := &Ring{fd: int(fd), entries: p.sqEntries, msgFlags: unix.MSG_DONTWAIT | unix.MSG_NOSIGNAL}
	unix.CloseOnExec(r.fd) // io_uring_setup's descriptors are close-on-exec since 5.x; make sure
	// IORING_FEAT_SINGLE_MMAP (5.4) maps both rings at offset 0, and
	// IORING_FEAT_NODROP (5.5) keeps completions from being dropped.
	const featSingleMmap, featNoDrop = 1 << 0, 1 << 1
	if p.features&(featSingleMmap|featNoDrop) != featSingleMmap|featNoDrop {
		r.Close()
		return nil, os.NewSyscallError("io_uring_setup", unix.ENOSYS)
	}
	size := max(int(p.sqOff.array+p.sqEntries*4), int(p.cqOff.cqes+p.cqEntries*uint32(unsafe.Sizeof(uringCQE{}))))
	rb, err := unix.Mmap(r.fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		r.Close()
		return nil, os.NewSyscallError("mmap", err)
	}
	r.maps[0] = rb
	sb, err := unix.Mmap(r.fd, uringOffSQEs, int(p.sqEntries)*int(unsafe.Sizeof(uringSQE{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		r.Close()
		return nil, os.NewSyscallError("mmap", err)
	}
	r.maps[1] = sb
	base := unsafe.Pointer(&rb[0])
	r.sqHead = (*uint32)(unsafe.Add(base, p.sqOff.head))
	r.sqTail = (*uint32)(unsafe.Add(base, p.sqOff.tail))
	r.sqMask = (*uint32)(unsafe.Add(base, p.sqOff.ringMask))
	r.sqArray = unsafe.Slice((*uint32)(unsafe.Add(base, p.sqOff.array)), p.sqEntries)
	r.sqes = unsafe.Slice((*uringSQE)(unsafe.Pointer(&sb[0])), p.sqEntries)
	r.cqHead = (*uint32)(unsafe.Add(base, p.cqOff.head))
	r.cqTail = (*uint32)(unsafe.Add(base, p.cqOff.tail))
	r.cqMask = (*uint32)(unsafe.Add(base, p.cqOff.ringMask))
	r.cqes = unsafe.Slice((*uringCQE)(unsafe.Add(base, p.cqOff.cqes)), p.cqEntries)
	// Check that a send with MSG_DONTWAIT completes at submission with
	// -EAGAIN on a full socket, as Send relies on (5.x kernels that armed
	// a poll for it would leave it in flight).
	if err := r.probe(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// FD returns the ring's descriptor.
func (r *Ring) FD() int { return r.fd }

// Entries returns the most sends one call of Send takes.
func (r *Ring) Entries() int { return int(r.entries) }

// Close releases the ring; a second Close does nothing.
func (r *Ring) Close() error {
	if r.fd < 0 {
		return nil
	}
	r.sqes, r.sqArray, r.cqes = nil, nil, nil
	for i, m := range r.maps {
		if m != nil {
			unix.Munmap(m)
			r.maps[i] = nil
		}
	}
	fd := r.fd
	r.fd = -1
	return unix.Close(fd)
}

// Op is one send (or, with Recv, receive) of a batch: the descriptor and
// the bytes to send or the buffer to fill (at most 2^31-1 bytes) on input,
// the result on output: the bytes moved (0 for a receive at end of
// stream), or 0 and the error.
type Op struct {
	FD   int
	P    []byte
	Recv bool
	N    int
	Err  unix.Errno
}

// Do makes every op in ops (at most Entries of them) with one
// io_uring_enter and fills in their results, each as write(2) or read(2)
// on the non-blocking socket would give it. The ops are independent: each
// may move fewer bytes than asked or fail (EAGAIN, EPIPE, ...) without
// affecting the others; the order in which the kernel makes them is
// unspecified, so a batch holds at most one op per descriptor and
// direction. An op whose descriptor is closed concurrently is the
// caller's bug, as for write(2). If the submission itself fails, Do
// returns the error, and every op it did not submit has N -1: nothing of
// it was done, and the caller must make it itself. Ops the kernel does not
// complete during the submission (no kernel that passed OpenRing's check
// has shown one) are cancelled, and waited for: N -1 if the cancellation
// came first. Nothing is left in flight when Do returns.
func (r *Ring) Do(ops []Op) error { return r.do(ops, true) }

// do is Do; without wait, ops the kernel did not complete during the
// submission are reported as ENOTSUP instead of waited for.
func (r *Ring) do(ops []Op, wait bool) error {
	r.seq++
	tail := atomic.LoadUint32(r.sqTail)
	mask := *r.sqMask
	total := 0
	for i := range ops {
		op := &ops[i]
		op.N, op.Err = -1, 0
		total += len(op.P)
		idx := (tail + uint32(i)) & mask
		var addr uint64
		if len(op.P) > 0 {
			addr = uint64(uintptr(unsafe.Pointer(unsafe.SliceData(op.P))))
		}
		opcode := uint8(uringOpSend)
		if op.Recv {
			opcode = uringOpRecv
		}
		r.sqes[idx] = uringSQE{
			opcode:   opcode,
			fd:       int32(op.FD),
			addr:     addr,
			len:      uint32(len(op.P)),
			opFlags:  r.msgFlags,
			userData: uint64(r.seq)<<32 | uint64(i),
		}
		r.sqArray[idx] = idx
	}
	atomic.StoreUint32(r.sqTail, tail+uint32(len(ops)))
	n := uintptr(len(ops))
	got, err := r.enter(n, 0, 0, total <= rawBytes)
	if err != nil || got != n {
		// Not everything was consumed: resource exhaustion (EAGAIN,
		// EBUSY, ENOMEM) or a bug. Withdraw the entries the kernel did
		// not take, so that the ring stays consistent; reap the rest.
		if err == nil {
			err = os.NewSyscallError("io_uring_enter", unix.EAGAIN)
		}
		atomic.StoreUint32(r.sqTail, tail+uint32(got))
	}
	left := int(got)
	cancelled := false
	for left > 0 {
		head := atomic.LoadUint32(r.cqHead)
		ctail := atomic.LoadUint32(r.cqTail)
		for ; head != ctail; head++ {
			c := &r.cqes[head&*r.cqMask]
			i := int(uint32(c.userData))
			if c.userData>>32 != uint64(r.seq) || i >= len(ops) || ops[i].N >= 0 || ops[i].Err != 0 {
				continue // not this batch's (a failed probe's), or a cancellation's
			}
			if c.res == -int32(unix.ECANCELED) {
				ops[i].Err = unix.ECANCELED // N stays -1: not made
			} else if c.res < 0 {
				ops[i].N, ops[i].Err = 0, unix.Errno(-c.res)
			} else {
				ops[i].N = int(c.res)
			}
			left--
		}
		atomic.StoreUint32(r.cqHead, head)
		if left == 0 {
			break
		}
		if !wait {
			return os.NewSyscallError("io_uring_enter", unix.ENOTSUP)
		}
		if !cancelled {
			// Never seen on a kernel that passed OpenRing's check: ops
			// in flight after the submission (a receive could wait for
			// data forever). Cancel them: one cancelled before it ran
			// did nothing and is reported as not made (N -1); one that
			// ran reports its result. Either way none is left in flight
			// (and touching its buffer) once Do returns.
			r.cancel(ops[:got])
			cancelled = true
		}
		// Wait for their completions, with the scheduler told, as for
		// any call that may block.
		if _, werr := r.enter(0, 1, uringEnterGetEvts, false); werr != nil {
			if e := werr.(*os.SyscallError).Err; e != unix.EINTR && e != unix.EAGAIN && e != unix.EBUSY {
				// The ring itself is broken (EBADF, EFAULT): what is
				// still in flight may yet be made, so it must not be
				// made again; it fails with EIO.
				for i := range ops[:got] {
					if ops[i].N < 0 && ops[i].Err == 0 {
						ops[i].N, ops[i].Err = 0, unix.EIO
					}
				}
				return werr
			}
		}
	}
	for i := range ops {
		if ops[i].N < 0 {
			ops[i].Err = 0
		}
	}
	return err
}

// cancel submits an IORING_OP_ASYNC_CANCEL for every op of the current
// batch that has no result yet; their own completions carry the cancel
// bit in user_data, which the reaping skips.
func (r *Ring) cancel(ops []Op) {
	tail := atomic.LoadUint32(r.sqTail)
	mask := *r.sqMask
	k := uint32(0)
	for i := range ops {
		if ops[i].N >= 0 || ops[i].Err != 0 {
			continue
		}
		idx := (tail + k) & mask
		r.sqes[idx] = uringSQE{
			opcode:   uringOpCancel,
			fd:       -1,
			addr:     uint64(r.seq)<<32 | uint64(i),
			userData: uint64(r.seq)<<32 | uringCancelBit | uint64(i),
		}
		r.sqArray[idx] = idx
		k++
	}
	atomic.StoreUint32(r.sqTail, tail+k)
	if got, _ := r.enter(uintptr(k), 0, 0, false); got != uintptr(k) {
		atomic.StoreUint32(r.sqTail, tail+uint32(got))
	}
}

func (r *Ring) enter(submit, wait, flags uintptr, raw bool) (uintptr, error) {
	var n uintptr
	var e unix.Errno
	if raw {
		n, _, e = unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), submit, wait, flags, 0, 0)
	} else {
		n, _, e = unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), submit, wait, flags, 0, 0)
	}
	if e != 0 {
		return 0, os.NewSyscallError("io_uring_enter", e)
	}
	return n, nil
}

// probe sends on a socket whose buffer is full and receives on one that
// is empty, and checks that both complete at once with EAGAIN, beside a
// send and a receive that succeed.
func (r *Ring) probe() error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socketpair", err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	buf := make([]byte, 64<<10)
	for {
		if _, err := unix.Write(fds[0], buf); err != nil {
			break
		}
	}
	// fds[0] cannot send (the peer's queue is full) and has nothing to
	// receive: both must fail at once. Then a send the other way, and a
	// receive of it, must succeed (separate batches: the kernel may
	// reorder the ops of one).
	for _, b := range [][]Op{
		{{FD: fds[0], P: buf[:1]}, {FD: fds[0], P: buf[:7], Recv: true}},
		{{FD: fds[1], P: buf[:5]}},
		{{FD: fds[0], P: buf[:7], Recv: true}},
	} {
		if err := r.do(b, false); err != nil {
			return err // an op left in flight is cancelled when the ring closes
		}
		for _, op := range b {
			want := 5
			if len(b) == 2 {
				want = -int(unix.EAGAIN)
			}
			if got := op.N - int(op.Err); got != want {
				return os.NewSyscallError("io_uring probe", unix.ENOTSUP)
			}
		}
	}
	return nil
}
