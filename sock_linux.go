//go:build !netloop_stdnet

// Linux socket calls: accept4 and sendfile from the file's own offset.

package netloop

import (
	"syscall"
	"unsafe"

	"github.com/netloop/netloop/loop"
	"golang.org/x/sys/unix"
)

const (
	acceptSyscall = "accept4"

	tcpKeepIdle  = unix.TCP_KEEPIDLE
	tcpKeepIntvl = unix.TCP_KEEPINTVL
	tcpKeepCnt   = unix.TCP_KEEPCNT
)

// sysAccept accepts one connection, non-blocking and close-on-exec in the
// same call. Package syscall's Accept4, not x/sys's: on Linux x/sys asks
// every IPv4 or IPv6 socket for its protocol (a getsockopt SO_PROTOCOL, to
// spot L2TP) while decoding the peer's address, a syscall package net
// does not make.
func sysAccept(fd int) (int, syscall.Sockaddr, error) {
	return syscall.Accept4(fd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
}

// rawMax is the largest read or write made as a raw syscall. x/sys's (and
// package syscall's) Read and Write tell the scheduler around every call
// (entersyscall, exitsyscall) so that sysmon can hand the P to another
// thread while the call blocks. netloop's sockets never block, so a call of
// at most rawMax bytes (copying 32 KiB takes a few microseconds) holds its
// P no longer than a short stretch of Go code would, and is made raw, as
// cloudwego/netpoll and gnet make theirs; larger ones keep the hand-off.
// The pooled read buffer (bufpool.Size) and net/http's 4 KiB buffers fit
// under it. Measured on the development VM: a read that finds nothing
// takes 1.40 against 1.94 us (BenchmarkRawSyscall), about 1 % of the CPU of
// a keep-alive request with GOMAXPROCS=1; with GOMAXPROCS=2 and the load
// tool on the same CPUs, where a thread descheduled inside a call looks
// blocked and sysmon takes its P away, http c50 ran 10 % more requests at
// 0.88 of the CPU per request, with futex calls down from 0.069 to 0.021
// and context switches from 0.154 to 0.044 per request.
const rawMax = 32 << 10

// sysRead reads from the non-blocking fd, with the race detector's
// annotations of x/sys's Read (see race_linux.go).
func sysRead(fd int, p []byte) (int, error) {
	n, e := rawRW(unix.SYS_READ, fd, p)
	if e != 0 {
		return 0, e
	}
	if raceEnabled {
		if n > 0 {
			raceWriteRange(unsafe.Pointer(&p[0]), n)
		}
		raceAcquire(unsafe.Pointer(&ioSync))
	}
	return n, nil
}

// sysWrite writes to the non-blocking fd, as sysRead reads.
func sysWrite(fd int, p []byte) (int, error) {
	if raceEnabled {
		raceReleaseMerge(unsafe.Pointer(&ioSync))
	}
	n, e := rawRW(unix.SYS_WRITE, fd, p)
	if e != 0 {
		return 0, e
	}
	if raceEnabled && n > 0 {
		raceReadRange(unsafe.Pointer(&p[0]), n)
	}
	return n, nil
}

// loopRead returns the result of a read the loop made into buf for the
// caller (loop.Desc.WaitReadInto) as sysRead returns its own, with the
// same annotations for the race detector.
func loopRead(buf []byte, r loop.ReadResult) (int, error) {
	if r.Err != 0 {
		return 0, r.Err
	}
	if raceEnabled {
		if r.N > 0 {
			raceWriteRange(unsafe.Pointer(&buf[0]), r.N)
		}
		raceAcquire(unsafe.Pointer(&ioSync))
	}
	return r.N, nil
}

// sysSend writes p on d: in the batch of sends its loop is collecting, if
// there is one (loop.Desc.Send), else with sysWrite. Call with a reference
// to d and its write lock held.
func sysSend(d *loop.Desc, p []byte) (int, error) {
	if len(p) == 0 || len(p) > loop.SendMax {
		return sysWrite(d.FD(), p)
	}
	if raceEnabled {
		raceReleaseMerge(unsafe.Pointer(&ioSync))
	}
	n, e, ok := d.Send(p)
	if !ok {
		return sysWrite(d.FD(), p)
	}
	if e != 0 {
		return 0, e
	}
	if raceEnabled && n > 0 {
		raceReadRange(unsafe.Pointer(&p[0]), n)
	}
	return n, nil
}

// rawRW makes read(2) or write(2) on p, raw if p is at most rawMax bytes.
func rawRW(trap uintptr, fd int, p []byte) (int, unix.Errno) {
	var r uintptr
	var e unix.Errno
	if len(p) <= rawMax {
		r, _, e = unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	} else {
		r, _, e = unix.Syscall(trap, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	}
	return int(r), e
}

// setNoSigpipe: Linux has no per-socket option; Go's runtime ignores the
// SIGPIPE a write to a reset socket raises, and the write fails with EPIPE.
func setNoSigpipe(int) {}

// sysSendfile sends up to n bytes from src's current position to dst and
// advances that position (Linux's sendfile with a nil offset).
func sysSendfile(dst, src, n int) (int, error) {
	return unix.Sendfile(dst, src, nil, n)
}

const haveSendfile = true

// errSendfileUnsupported reports errnos after which sendfile is not the
// right tool for this pair of descriptors and io.Copy should take over.
func errSendfileUnsupported(err error) bool {
	return err == unix.ENOSYS || err == unix.EOPNOTSUPP || err == unix.EINVAL
}
