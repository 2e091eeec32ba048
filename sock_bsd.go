//go:build (darwin || dragonfly || freebsd || netbsd || openbsd) && !netloop_stdnet

// Socket calls shared by macOS and the BSDs.

package netloop

import (
	"github.com/netloop/netloop/loop"
	"golang.org/x/sys/unix"
)

func sysRead(fd int, p []byte) (int, error) {
	n, err := unix.Read(fd, p)
	if err != nil {
		n = 0
	}
	return n, err
}

func sysWrite(fd int, p []byte) (int, error) {
	n, err := unix.Write(fd, p)
	if err != nil {
		n = 0
	}
	return n, err
}

// loopRead is never called on the BSDs: their loops make no reads
// (loop.Desc.WaitReadInto).
func loopRead(_ []byte, r loop.ReadResult) (int, error) {
	if r.Err != 0 {
		return 0, r.Err
	}
	return r.N, nil
}

// sysSend writes p on d: the BSDs have no batched sends (loop.Desc.Send).
func sysSend(d *loop.Desc, p []byte) (int, error) { return sysWrite(d.FD(), p) }

// setNoSigpipe sets SO_NOSIGPIPE where the OS has it, so that a write to a
// reset socket fails with EPIPE without raising a signal.
func setNoSigpipe(fd int) {
	if soNoSigpipe >= 0 {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, soNoSigpipe, 1)
	}
}

// errSendfileUnsupported reports errnos after which sendfile is not the
// right tool for this pair of descriptors and io.Copy should take over.
func errSendfileUnsupported(err error) bool {
	return err == unix.ENOSYS || err == unix.EOPNOTSUPP || err == unix.EINVAL
}
