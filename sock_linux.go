//go:build !netloop_stdnet

// Linux socket calls: accept4 and sendfile from the file's own offset.

package netloop

import "golang.org/x/sys/unix"

const (
	acceptSyscall = "accept4"

	tcpKeepIdle  = unix.TCP_KEEPIDLE
	tcpKeepIntvl = unix.TCP_KEEPINTVL
	tcpKeepCnt   = unix.TCP_KEEPCNT
)

// sysAccept accepts one connection, non-blocking and close-on-exec in the
// same call.
func sysAccept(fd int) (int, unix.Sockaddr, error) {
	return unix.Accept4(fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
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
