//go:build (dragonfly || freebsd) && !netloop_stdnet

package netloop

import "golang.org/x/sys/unix"

const acceptSyscall = "accept4"

// sysAccept accepts one connection, non-blocking and close-on-exec in the
// same call.
func sysAccept(fd int) (int, unix.Sockaddr, error) {
	return unix.Accept4(fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
}
