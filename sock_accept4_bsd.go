//go:build (dragonfly || freebsd) && !netloop_stdnet

package netloop

import "syscall"

const acceptSyscall = "accept4"

// sysAccept accepts one connection, non-blocking and close-on-exec in the
// same call.
func sysAccept(fd int) (int, syscall.Sockaddr, error) {
	return syscall.Accept4(fd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
}
