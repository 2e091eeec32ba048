//go:build (linux || darwin || dragonfly || freebsd || netbsd || openbsd) && !netloop_stdnet

// Socket syscalls shared by every poll-based platform. Functions return raw
// errnos or *os.SyscallError where package net names the call; callers wrap
// them with opError. OS-specific pieces, sysRead and sysWrite among them,
// are in sock_linux.go, sock_bsd.go and the files beside them.

package netloop

import (
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Errnos and constants the portable code compares against.
const (
	errAGAIN       = unix.EAGAIN
	errINTR        = unix.EINTR
	errCONNABORTED = unix.ECONNABORTED
	errMFILE       = unix.EMFILE
	errNFILE       = unix.ENFILE
	shutRD, shutWR = unix.SHUT_RD, unix.SHUT_WR
	maxRW          = 1 << 30 // as internal/poll: larger reads or writes are split
	sockStream     = unix.SOCK_STREAM
	sockSeqpacket  = unix.SOCK_SEQPACKET
	sysSetsockopt  = "setsockopt"
)

func sysClose(fd int) error { return unix.Close(fd) }

func sysShutdown(fd, how int) error {
	return os.NewSyscallError("shutdown", unix.Shutdown(fd, how))
}

// sysDup returns a close-on-exec duplicate of fd, as package net's File does.
func sysDup(fd int) (int, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("fcntl", err)
	}
	return nfd, nil
}

func setsockoptInt(fd, level, name, v int) error {
	return os.NewSyscallError(sysSetsockopt, unix.SetsockoptInt(fd, level, name, v))
}

func setNoDelay(fd int, on bool) error {
	return setsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, boolint(on))
}

func setKeepAlive(fd int, on bool) error {
	return setsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, boolint(on))
}

// Package net's defaults for a zero KeepAliveConfig field (net/dial.go).
const (
	defaultKeepAliveIdle     = 15 * time.Second
	defaultKeepAliveInterval = 15 * time.Second
	defaultKeepAliveCount    = 9
)

// setKeepAliveIdle sets the idle time before probes: 0 means the default,
// < 0 leaves it alone.
func setKeepAliveIdle(fd int, d time.Duration) error {
	return setKeepAliveSecs(fd, tcpKeepIdle, d, defaultKeepAliveIdle)
}

func setKeepAliveInterval(fd int, d time.Duration) error {
	return setKeepAliveSecs(fd, tcpKeepIntvl, d, defaultKeepAliveInterval)
}

func setKeepAliveSecs(fd, opt int, d, def time.Duration) error {
	if d == 0 {
		d = def
	} else if d < 0 {
		return nil
	}
	if opt < 0 {
		return unix.ENOPROTOOPT // no per-socket option here (OpenBSD), as package net says
	}
	// The kernel takes seconds: round up, as package net does.
	secs := int((d + time.Second - 1) / time.Second)
	return setsockoptInt(fd, unix.IPPROTO_TCP, opt, secs)
}

func setKeepAliveCount(fd, n int) error {
	if n == 0 {
		n = defaultKeepAliveCount
	} else if n < 0 {
		return nil
	}
	if tcpKeepCnt < 0 {
		return unix.ENOPROTOOPT
	}
	return setsockoptInt(fd, unix.IPPROTO_TCP, tcpKeepCnt, n)
}

func setLinger(fd, sec int) error {
	var l unix.Linger
	if sec >= 0 {
		l.Onoff, l.Linger = 1, int32(sec)
	}
	return os.NewSyscallError(sysSetsockopt, unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &l))
}

func setReadBuffer(fd, bytes int) error {
	return setsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, bytes)
}

func setWriteBuffer(fd, bytes int) error {
	return setsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, bytes)
}

func boolint(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sysLocalAddr returns fd's local address as package net reports it.
// Addresses are decoded by package syscall, as package net's are (see
// sysAccept in sock_linux.go for why not x/sys).
func sysLocalAddr(fd int, network string) net.Addr {
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return nil
	}
	return sockaddrToAddr(sa, network)
}

// sockaddrToAddr converts as package net's sockaddrToTCP / sockaddrToUnix
// do, including the zone name of a link-local IPv6 peer.
func sockaddrToAddr(sa syscall.Sockaddr, network string) net.Addr {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port}
	case *syscall.SockaddrInet6:
		return &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port, Zone: zoneName(int(sa.ZoneId))}
	case *syscall.SockaddrUnix:
		n := "unix"
		if network == "unixpacket" {
			n = "unixpacket"
		}
		return &net.UnixAddr{Name: sa.Name, Net: n}
	}
	return nil
}

func zoneName(index int) string {
	if index == 0 {
		return ""
	}
	if ifi, err := net.InterfaceByIndex(index); err == nil {
		return ifi.Name
	}
	return strconv.Itoa(index)
}
