//go:build (linux || darwin || dragonfly || freebsd || netbsd || openbsd) && !netloop_stdnet

package netloop

import (
	"io"
	"os"
	"syscall"

	"github.com/netloop/netloop/loop"
)

// sendFile copies a file (or an io.LimitedReader of one) to the socket with
// sendfile(2), parking on write readiness when the send buffer is full. It
// follows package net's sendFile: handled is false when it did nothing and
// io.Copy should run instead.
func (fd *netFD) sendFile(r io.Reader) (written int64, err error, handled bool) {
	if !haveSendfile {
		return 0, nil, false
	}
	var remain int64 // 0: to the end of the file
	lr, isLimited := r.(*io.LimitedReader)
	if isLimited {
		remain, r = lr.N, lr.R
		if remain <= 0 {
			return 0, nil, true
		}
	}
	// r may be an *os.File or os's fileWithoutWriteTo: assert the interface.
	f, ok := r.(syscall.Conn)
	if !ok {
		return 0, nil, false
	}
	sc, err := f.SyscallConn()
	if err != nil {
		return 0, nil, false
	}
	var werr error
	err = sc.Read(func(src uintptr) bool {
		written, werr, handled = fd.sendFileFrom(int(src), remain)
		return true
	})
	if err == nil {
		err = werr
	}
	if isLimited {
		lr.N = remain - written
	}
	return written, err, handled
}

func (fd *netFD) sendFileFrom(src int, size int64) (written int64, err error, handled bool) {
	// A closed or shut-down socket fails before f runs: not handled, and
	// io.Copy reports it as package net's fallback does.
	_, err = fd.locked(false, func(d *loop.Desc) (int, error) {
		handled = true
		for {
			chunk := 1<<31 - 1
			if size > 0 {
				chunk = int(min(size-written, int64(chunk)))
			}
			seq := d.WriteSeq()
			n, err := sysSendfile(d.FD(), src, chunk)
			if n > 0 {
				written += int64(n)
			}
			switch {
			case err == nil:
				if n == 0 || (size > 0 && written >= size) {
					return 0, nil
				}
			case err == errAGAIN:
				if size > 0 && written >= size {
					return 0, nil
				}
				if err := d.WaitWrite(seq); err != nil {
					return 0, err
				}
			case err == errINTR:
			case errSendfileUnsupported(err):
				handled = written > 0
				return 0, os.NewSyscallError("sendfile", err)
			default:
				return 0, os.NewSyscallError("sendfile", err)
			}
		}
	})
	return written, err, handled
}
