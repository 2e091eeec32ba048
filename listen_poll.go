//go:build (linux || darwin || dragonfly || freebsd || netbsd || openbsd) && !netloop_stdnet

package netloop

import (
	"context"
	"net"
	"os"
	"syscall"
)

// Native reports whether netloop's own event loop serves the listeners
// and connections of this build (epoll or kqueue), as opposed to package
// net (other systems, or -tags netloop_stdnet).
func Native() bool { return true }

// listen lets package net create, configure and bind the socket (so that
// every address form, option and error is exactly net.Listen's), then takes
// it over.
func (lc *ListenConfig) listen(ctx context.Context, network, address string) (*Listener, error) {
	nlc := net.ListenConfig{Control: lc.Control, KeepAlive: lc.KeepAlive, KeepAliveConfig: lc.KeepAliveConfig}
	nl, err := nlc.Listen(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return lc.takeOver(nl, network, true)
}

// fileListener is FileListener: package net checks and duplicates the
// descriptor, then netloop takes the socket over as Listen does. The
// socket file of a unix listener is not removed on Close (as with
// net.FileListener) unless SetUnlinkOnClose(true) asks for it.
func (lc *ListenConfig) fileListener(f *os.File) (*Listener, error) {
	nl, err := net.FileListener(f)
	if err != nil {
		return nil, err
	}
	return lc.takeOver(nl, nl.Addr().Network(), false)
}

// takeOver moves a listener of package net into netloop: a close-on-exec
// duplicate of its socket is registered with a loop and net's own copy is
// closed, which removes it from the runtime's poller. The socket itself,
// with its bound address and backlog, lives on in the duplicate. created
// says whether the socket file of a unix listener is ours to remove.
func (lc *ListenConfig) takeOver(nl net.Listener, network string, created bool) (*Listener, error) {
	laddr := nl.Addr()
	path := ""
	if ul, ok := nl.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false) // ours to remove from now on
		path = laddr.(*net.UnixAddr).Name
	}
	fail := func(err error) (*Listener, error) {
		if created && path != "" && path[0] != '@' {
			os.Remove(path)
		}
		return nil, &net.OpError{Op: "listen", Net: network, Addr: laddr, Err: err}
	}
	sfd, err := dupListener(nl)
	nl.Close()
	if err != nil {
		return fail(err)
	}
	sotype := sockStream
	if network == "unixpacket" {
		sotype = sockSeqpacket
	}
	fd, err := newFD(sfd, network, laddr, nil, sotype, lc.Loops)
	if err != nil {
		sysClose(sfd)
		return fail(err)
	}
	l := &Listener{fd: fd, lc: *lc, path: path, unlink: created && path != ""}
	return l.init(), nil
}

func dupListener(nl net.Listener) (int, error) {
	sc, ok := nl.(syscall.Conn)
	if !ok {
		return -1, syscall.EINVAL
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	sfd, derr := -1, error(nil)
	if err := rc.Control(func(s uintptr) { sfd, derr = sysDup(int(s)) }); err != nil {
		return -1, err
	}
	return sfd, derr
}

// accept takes one connection from the kernel, parking while the backlog
// is empty. ECONNABORTED and EINTR are retried; anything else (EMFILE,
// ENFILE, ...) is returned as an *os.SyscallError, whose Temporary method
// lets http.Server back off and try again.
func (l *Listener) accept() (*Conn, error) {
	d := l.fd.d
	if !d.Incref() {
		return nil, net.ErrClosed
	}
	defer d.Decref()
	d.LockRead()
	defer d.UnlockRead()
	if err := d.CheckRead(); err != nil {
		return nil, err
	}
	for {
		seq := d.ReadSeq()
		if d.ReadDrained(seq) {
			if err := d.WaitRead(seq); err != nil {
				return nil, err
			}
			continue
		}
		s, rsa, err := sysAccept(d.FD())
		switch err {
		case nil:
			return l.newConn(s, sockaddrToAddr(rsa, l.fd.net))
		case errINTR, errCONNABORTED:
			continue
		case errAGAIN:
			d.SetReadDrained(seq, true)
			continue
		}
		return nil, os.NewSyscallError(acceptSyscall, err)
	}
}

// newConn sets up an accepted socket as package net does (TCP_NODELAY,
// keep-alive from the ListenConfig) and registers it with a loop.
func (l *Listener) newConn(s int, raddr net.Addr) (*Conn, error) {
	laddr := sysLocalAddr(s, l.fd.net)
	setNoSigpipe(s)
	if _, isTCP := laddr.(*net.TCPAddr); isTCP {
		// Errors are ignored, as package net's newTCPConn ignores them.
		setNoDelay(s, true)
		ka := l.lc.KeepAliveConfig
		if !ka.Enable && l.lc.KeepAlive >= 0 {
			ka = net.KeepAliveConfig{Enable: true, Idle: l.lc.KeepAlive}
		}
		if ka.Enable {
			applyKeepAlive(s, ka)
		}
	}
	sotype := sockStream
	if !l.fd.stream {
		sotype = sockSeqpacket
	}
	fd, err := newFD(s, l.fd.net, laddr, raddr, sotype, l.lc.Loops)
	if err != nil {
		sysClose(s)
		return nil, err
	}
	return &Conn{fd: fd}, nil
}
