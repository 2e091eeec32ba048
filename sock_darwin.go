//go:build !netloop_stdnet

// macOS socket options: keep-alive option names and SO_NOSIGPIPE.

package netloop

import "golang.org/x/sys/unix"

const (
	tcpKeepIdle  = unix.TCP_KEEPALIVE // macOS names the idle time so
	tcpKeepIntvl = 0x101              // TCP_KEEPINTVL, missing on some GOARCHes (as net/tcpsockopt_darwin.go)
	tcpKeepCnt   = 0x102              // TCP_KEEPCNT

	soNoSigpipe = unix.SO_NOSIGPIPE
)
