//go:build !((linux || darwin || dragonfly || freebsd || netbsd || openbsd) && !netloop_stdnet)

package netloop

import (
	"context"
	"net"
	"os"
)

// Native reports whether netloop's own event loop serves the listeners
// and connections of this build (epoll or kqueue), as opposed to package
// net (other systems, or -tags netloop_stdnet).
func Native() bool { return false }

func (lc *ListenConfig) listen(ctx context.Context, network, address string) (*Listener, error) {
	nlc := net.ListenConfig{Control: lc.Control, KeepAlive: lc.KeepAlive, KeepAliveConfig: lc.KeepAliveConfig}
	nl, err := nlc.Listen(ctx, network, address)
	if err != nil {
		return nil, err
	}
	// Package net removes the socket file of a unix listener itself.
	l := &Listener{fd: &netFD{ln: nl, net: network, laddr: nl.Addr()}, lc: *lc}
	return l.init(), nil
}

func (lc *ListenConfig) fileListener(f *os.File) (*Listener, error) {
	nl, err := net.FileListener(f)
	if err != nil {
		return nil, err
	}
	l := &Listener{fd: &netFD{ln: nl, net: nl.Addr().Network(), laddr: nl.Addr()}, lc: *lc}
	return l.init(), nil
}

func (l *Listener) accept() (*Conn, error) {
	c, err := l.fd.ln.Accept()
	if err != nil {
		return nil, inner(err)
	}
	return &Conn{fd: &netFD{c: c, net: l.fd.net, laddr: c.LocalAddr(), raddr: c.RemoteAddr()}}, nil
}
