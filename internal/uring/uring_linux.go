// Package uring holds the kernel's io_uring ABI and the setting up of a
// ring's shared memory, for package poll's batched sends and receives and
// for bench/echoload's client. What each does with its ring is its own.
package uring

import (
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Params is struct io_uring_params (include/uapi/linux/io_uring.h).
type Params struct {
	SQEntries, CQEntries, Flags, SQThreadCPU, SQThreadIdle, Features, WQFd uint32
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

// SQE is a submission queue entry, struct io_uring_sqe, in the layout the
// send, receive, timeout and cancel operations use.
type SQE struct {
	Opcode, Flags uint8
	Ioprio        uint16
	FD            int32
	Off, Addr     uint64
	Len, OpFlags  uint32
	UserData      uint64
	pad           [3]uint64
}

// CQE is a completion queue entry, struct io_uring_cqe.
type CQE struct {
	UserData uint64
	Res      int32
	Flags    uint32
}

// Opcodes, setup and enter flags.
const (
	OpTimeout     = 11 // IORING_OP_TIMEOUT
	OpAsyncCancel = 14 // IORING_OP_ASYNC_CANCEL
	OpSend        = 26 // IORING_OP_SEND
	OpRecv        = 27 // IORING_OP_RECV

	SetupCQSize       = 1 << 3  // IORING_SETUP_CQSIZE: Params.CQEntries is the completion queue's size
	SetupSubmitAll    = 1 << 7  // IORING_SETUP_SUBMIT_ALL: go on past a failed entry
	SetupCoopTaskrun  = 1 << 8  // IORING_SETUP_COOP_TASKRUN
	SetupSingleIssuer = 1 << 12 // IORING_SETUP_SINGLE_ISSUER
	SetupDeferTaskrun = 1 << 13 // IORING_SETUP_DEFER_TASKRUN: completions are run only in io_uring_enter

	EnterGetEvents = 1 << 0 // IORING_ENTER_GETEVENTS

	offSQEs = 0x10000000 // IORING_OFF_SQES
	// IORING_FEAT_SINGLE_MMAP (5.4) maps both rings at offset 0, and
	// IORING_FEAT_NODROP (5.5) keeps completions from being dropped.
	featSingleMmap, featNoDrop = 1 << 0, 1 << 1
)

// Ring is a ring's descriptor and its two queues, mapped into memory.
type Ring struct {
	FD                     int
	Entries                uint32 // submission queue entries
	SQHead, SQTail, SQMask *uint32
	SQArray                []uint32
	SQEs                   []SQE
	CQHead, CQTail, CQMask *uint32
	CQEs                   []CQE
	maps                   [2][]byte
}

// Setup makes a ring with io_uring_setup(entries, p) and maps its queues.
// It fails where io_uring is unavailable or lacks single-mmap and no-drop
// (kernels before 5.5).
func Setup(entries uint32, p *Params) (*Ring, error) {
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(p)), 0)
	if e != 0 {
		return nil, os.NewSyscallError("io_uring_setup", e)
	}
	r := &Ring{FD: int(fd), Entries: p.SQEntries}
	unix.CloseOnExec(r.FD) // io_uring_setup's descriptors are close-on-exec since 5.x; make sure
	if p.Features&(featSingleMmap|featNoDrop) != featSingleMmap|featNoDrop {
		r.Close()
		return nil, os.NewSyscallError("io_uring_setup", unix.ENOSYS)
	}
	size := max(int(p.sqOff.array+p.SQEntries*4), int(p.cqOff.cqes+p.CQEntries*uint32(unsafe.Sizeof(CQE{}))))
	rb, err := unix.Mmap(r.FD, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		r.Close()
		return nil, os.NewSyscallError("mmap", err)
	}
	r.maps[0] = rb
	sb, err := unix.Mmap(r.FD, offSQEs, int(p.SQEntries)*int(unsafe.Sizeof(SQE{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		r.Close()
		return nil, os.NewSyscallError("mmap", err)
	}
	r.maps[1] = sb
	base := unsafe.Pointer(&rb[0])
	r.SQHead = (*uint32)(unsafe.Add(base, p.sqOff.head))
	r.SQTail = (*uint32)(unsafe.Add(base, p.sqOff.tail))
	r.SQMask = (*uint32)(unsafe.Add(base, p.sqOff.ringMask))
	r.SQArray = unsafe.Slice((*uint32)(unsafe.Add(base, p.sqOff.array)), p.SQEntries)
	r.SQEs = unsafe.Slice((*SQE)(unsafe.Pointer(&sb[0])), p.SQEntries)
	r.CQHead = (*uint32)(unsafe.Add(base, p.cqOff.head))
	r.CQTail = (*uint32)(unsafe.Add(base, p.cqOff.tail))
	r.CQMask = (*uint32)(unsafe.Add(base, p.cqOff.ringMask))
	r.CQEs = unsafe.Slice((*CQE)(unsafe.Add(base, p.cqOff.cqes)), p.CQEntries)
	return r, nil
}

// Put writes s as the k-th entry after the submission queue's tail, which
// it does not move: the caller publishes entries with Publish.
func (r *Ring) Put(k uint32, s SQE) {
	idx := (atomic.LoadUint32(r.SQTail) + k) & *r.SQMask
	r.SQEs[idx] = s
	r.SQArray[idx] = idx
}

// Publish moves the submission queue's tail by n entries (negative n
// withdraws entries the kernel did not consume).
func (r *Ring) Publish(n int) {
	atomic.StoreUint32(r.SQTail, atomic.LoadUint32(r.SQTail)+uint32(n))
}

// Reap calls f for every completion waiting, in order, and consumes them.
func (r *Ring) Reap(f func(c *CQE)) {
	head := atomic.LoadUint32(r.CQHead)
	tail := atomic.LoadUint32(r.CQTail)
	for ; head != tail; head++ {
		f(&r.CQEs[head&*r.CQMask])
	}
	atomic.StoreUint32(r.CQHead, head)
}

// Close unmaps the queues and closes the ring (which cancels whatever is
// still in flight); a second Close does nothing.
func (r *Ring) Close() error {
	if r.FD < 0 {
		return nil
	}
	r.SQEs, r.SQArray, r.CQEs = nil, nil, nil
	r.SQHead, r.SQTail, r.SQMask, r.CQHead, r.CQTail, r.CQMask = nil, nil, nil, nil, nil, nil
	for i, m := range r.maps {
		if m != nil {
			unix.Munmap(m)
			r.maps[i] = nil
		}
	}
	fd := r.FD
	r.FD = -1
	return unix.Close(fd)
}

// Timespec is struct __kernel_timespec, 64-bit fields on every
// architecture (an IORING_OP_TIMEOUT's period).
type Timespec struct{ Sec, Nsec int64 }

// NsecToTimespec converts nanoseconds to a Timespec.
func NsecToTimespec(ns int64) Timespec { return Timespec{Sec: ns / 1e9, Nsec: ns % 1e9} }
