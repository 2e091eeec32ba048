//go:build (netbsd || openbsd) && !netloop_stdnet

package netloop

// No sendfile here (package net does not use one on these systems either):
// ReadFrom copies through user space.
const haveSendfile = false

func sysSendfile(dst, src, n int) (int, error) {
	panic("netloop: sendfile called where haveSendfile is false")
}
