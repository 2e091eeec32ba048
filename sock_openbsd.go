//go:build !netloop_stdnet

package netloop

// OpenBSD has no per-socket keep-alive timing options; setting them fails
// with ENOPROTOOPT, as in package net (net/tcpsockopt_openbsd.go). Nor does
// it have SO_NOSIGPIPE.
const (
	tcpKeepIdle  = -1
	tcpKeepIntvl = -1
	tcpKeepCnt   = -1
	soNoSigpipe  = -1
)
