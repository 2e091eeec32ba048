//go:build (dragonfly || freebsd || netbsd) && !netloop_stdnet

package netloop

import "golang.org/x/sys/unix"

const (
	tcpKeepIdle  = unix.TCP_KEEPIDLE
	tcpKeepIntvl = unix.TCP_KEEPINTVL
	tcpKeepCnt   = unix.TCP_KEEPCNT
	soNoSigpipe  = unix.SO_NOSIGPIPE
)
