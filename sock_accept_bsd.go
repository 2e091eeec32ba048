//go:build (darwin || netbsd || openbsd) && !netloop_stdnet

package netloop

import (
	"syscall"

	"golang.org/x/sys/unix"
)

const acceptSyscall = "accept"

// sysAccept accepts one connection and makes it close-on-exec and
// non-blocking. Without accept4 (macOS; x/sys/unix offers none for NetBSD
// and OpenBSD), the close-on-exec flag is set under
// syscall.ForkLock, as package net does, so that a concurrent fork+exec
// cannot inherit the descriptor.
func sysAccept(fd int) (int, syscall.Sockaddr, error) {
	syscall.ForkLock.RLock()
	nfd, sa, err := syscall.Accept(fd)
	if err == nil {
		unix.CloseOnExec(nfd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, nil, err
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return -1, nil, err
	}
	return nfd, sa, nil
}
