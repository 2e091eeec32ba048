package poll

import (
	"os"
	"unsafe"

	"github.com/netloop/netloop/internal/uring"
	"golang.org/x/sys/unix"
)

const (
	uringCancelBit = 1 << 31 // in user_data: a cancellation's own completion

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
	rg       *uring.Ring
	seq      uint32 // batches sent: the high half of user_data
	msgFlags uint32 // MSG_DONTWAIT (tests take it away to leave ops in flight)
}

// OpenRing sets up a ring for batches of up to entries sends. It fails
// where io_uring is unavailable (kernels before 5.18, which lack
// IORING_SETUP_SUBMIT_ALL; seccomp sandboxes; kernel.io_uring_disabled)
// or lacks what Do needs.
func OpenRing(entries uint32) (*Ring, error) {
	rg, err := uring.Setup(entries, &uring.Params{Flags: uring.SetupSubmitAll})
	if err != nil {
		return nil, err
	}
	r := &Ring{rg: rg, msgFlags: unix.MSG_DONTWAIT | unix.MSG_NOSIGNAL}
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
func (r *Ring) FD() int { return r.rg.FD }

// Entries returns the most sends one call of Send takes.
func (r *Ring) Entries() int { return int(r.rg.Entries) }

// Close releases the ring; a second Close does nothing.
func (r *Ring) Close() error { return r.rg.Close() }

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
	total := 0
	for i := range ops {
		op := &ops[i]
		op.N, op.Err = -1, 0
		total += len(op.P)
		var addr uint64
		if len(op.P) > 0 {
			addr = uint64(uintptr(unsafe.Pointer(unsafe.SliceData(op.P))))
		}
		opcode := uint8(uring.OpSend)
		if op.Recv {
			opcode = uring.OpRecv
		}
		r.rg.Put(uint32(i), uring.SQE{
			Opcode:   opcode,
			FD:       int32(op.FD),
			Addr:     addr,
			Len:      uint32(len(op.P)),
			OpFlags:  r.msgFlags,
			UserData: uint64(r.seq)<<32 | uint64(i),
		})
	}
	r.rg.Publish(len(ops))
	n := uintptr(len(ops))
	got, err := r.enter(n, 0, 0, total <= rawBytes)
	if err != nil || got != n {
		// Not everything was consumed: resource exhaustion (EAGAIN,
		// EBUSY, ENOMEM) or a bug. Withdraw the entries the kernel did
		// not take, so that the ring stays consistent; reap the rest.
		if err == nil {
			err = os.NewSyscallError("io_uring_enter", unix.EAGAIN)
		}
		r.rg.Publish(int(got) - len(ops))
	}
	left := int(got)
	cancelled := false
	for left > 0 {
		r.rg.Reap(func(c *uring.CQE) {
			i := int(uint32(c.UserData))
			if c.UserData>>32 != uint64(r.seq) || i >= len(ops) || ops[i].N >= 0 || ops[i].Err != 0 {
				return // not this batch's (a failed probe's), or a cancellation's
			}
			if c.Res == -int32(unix.ECANCELED) {
				ops[i].Err = unix.ECANCELED // N stays -1: not made
			} else if c.Res < 0 {
				ops[i].N, ops[i].Err = 0, unix.Errno(-c.Res)
			} else {
				ops[i].N = int(c.Res)
			}
			left--
		})
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
		if _, werr := r.enter(0, 1, uring.EnterGetEvents, false); werr != nil {
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
	k := uint32(0)
	for i := range ops {
		if ops[i].N >= 0 || ops[i].Err != 0 {
			continue
		}
		r.rg.Put(k, uring.SQE{
			Opcode:   uring.OpAsyncCancel,
			FD:       -1,
			Addr:     uint64(r.seq)<<32 | uint64(i),
			UserData: uint64(r.seq)<<32 | uringCancelBit | uint64(i),
		})
		k++
	}
	r.rg.Publish(int(k))
	if got, _ := r.enter(uintptr(k), 0, 0, false); got != uintptr(k) {
		r.rg.Publish(int(got) - int(k))
	}
}

func (r *Ring) enter(submit, wait, flags uintptr, raw bool) (uintptr, error) {
	var n uintptr
	var e unix.Errno
	if raw {
		n, _, e = unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.rg.FD), submit, wait, flags, 0, 0)
	} else {
		n, _, e = unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.rg.FD), submit, wait, flags, 0, 0)
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
