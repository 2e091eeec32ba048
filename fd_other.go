//go:build !((linux || darwin || dragonfly || freebsd || netbsd || openbsd) && !netloop_stdnet)

// The package-net backend: on systems without epoll or kqueue (Windows,
// plan9, js/wasm, wasip1, Solaris, illumos, AIX, ...), or on any system when
// built with -tags netloop_stdnet, netloop's API is served by package net.
// The exported types behave the same; errors are package net's, unwrapped
// here and wrapped again with the same fields by conn.go and listener.go.

package netloop

import (
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// netFD is either an accepted connection or a listener of package net.
type netFD struct {
	acct         accounting   // Stats and MaxConns, for accepted connections
	c            net.Conn     // accepted connections
	ln           net.Listener // listeners
	net          string
	laddr, raddr net.Addr
}

// inner returns the error inside package net's *net.OpError, so that the
// caller can wrap it again exactly as package net did.
func inner(err error) error {
	if oe, ok := err.(*net.OpError); ok {
		return oe.Err
	}
	return err
}

func (fd *netFD) Read(p []byte) (int, error) {
	n, err := fd.c.Read(p)
	return n, inner(err)
}

func (fd *netFD) Write(p []byte) (int, error) {
	n, err := fd.c.Write(p)
	return n, inner(err)
}

func (fd *netFD) Close() error {
	if fd.ln != nil {
		return inner(fd.ln.Close())
	}
	return inner(fd.c.Close())
}

func (fd *netFD) SetDeadline(t time.Time) error { return inner(fd.c.SetDeadline(t)) }

func (fd *netFD) SetReadDeadline(t time.Time) error {
	if fd.ln != nil {
		if d, ok := fd.ln.(interface{ SetDeadline(time.Time) error }); ok {
			return d.SetDeadline(t)
		}
		return syscall.EINVAL
	}
	return inner(fd.c.SetReadDeadline(t))
}

func (fd *netFD) SetWriteDeadline(t time.Time) error { return inner(fd.c.SetWriteDeadline(t)) }

func (fd *netFD) setReadBuffer(bytes int) error {
	if c, ok := fd.c.(interface{ SetReadBuffer(int) error }); ok {
		return inner(c.SetReadBuffer(bytes))
	}
	return syscall.EINVAL
}

func (fd *netFD) setWriteBuffer(bytes int) error {
	if c, ok := fd.c.(interface{ SetWriteBuffer(int) error }); ok {
		return inner(c.SetWriteBuffer(bytes))
	}
	return syscall.EINVAL
}

func (fd *netFD) setNoDelay(on bool) error {
	if c, ok := fd.c.(interface{ SetNoDelay(bool) error }); ok {
		return inner(c.SetNoDelay(on))
	}
	return syscall.EINVAL
}

func (fd *netFD) setKeepAlive(on bool) error {
	if c, ok := fd.c.(interface{ SetKeepAlive(bool) error }); ok {
		return inner(c.SetKeepAlive(on))
	}
	return syscall.EINVAL
}

func (fd *netFD) setKeepAlivePeriod(d time.Duration) error {
	if c, ok := fd.c.(interface{ SetKeepAlivePeriod(time.Duration) error }); ok {
		return inner(c.SetKeepAlivePeriod(d))
	}
	return syscall.EINVAL
}

func (fd *netFD) setKeepAliveConfig(config net.KeepAliveConfig) error {
	if c, ok := fd.c.(interface {
		SetKeepAliveConfig(net.KeepAliveConfig) error
	}); ok {
		return inner(c.SetKeepAliveConfig(config))
	}
	return syscall.EINVAL
}

func (fd *netFD) setLinger(sec int) error {
	if c, ok := fd.c.(interface{ SetLinger(int) error }); ok {
		return inner(c.SetLinger(sec))
	}
	return syscall.EINVAL
}

func (fd *netFD) setUnlinkOnClose(unlink bool) {
	// An interface, not *net.UnixListener: plan9's has no such method.
	if ul, ok := fd.ln.(interface{ SetUnlinkOnClose(bool) }); ok {
		ul.SetUnlinkOnClose(unlink)
	}
}

func (fd *netFD) closeRead() error {
	if c, ok := fd.c.(interface{ CloseRead() error }); ok {
		return inner(c.CloseRead())
	}
	return syscall.EINVAL
}

func (fd *netFD) closeWrite() error {
	if c, ok := fd.c.(interface{ CloseWrite() error }); ok {
		return inner(c.CloseWrite())
	}
	return syscall.EINVAL
}

func (fd *netFD) dup() (*os.File, error) {
	var f interface{ File() (*os.File, error) }
	if fd.ln != nil {
		f, _ = fd.ln.(interface{ File() (*os.File, error) })
	} else {
		f, _ = fd.c.(interface{ File() (*os.File, error) })
	}
	if f == nil {
		return nil, syscall.EINVAL
	}
	file, err := f.File()
	return file, inner(err)
}

// readFrom uses package net's ReadFrom (sendfile, splice) where the
// connection has one, else io.Copy through w (whose Writes count
// themselves in Stats: counted reports that case).
func (fd *netFD) readFrom(r io.Reader, w io.Writer) (n int64, err error, counted bool) {
	if rf, ok := fd.c.(io.ReaderFrom); ok {
		n, err := rf.ReadFrom(r)
		return n, inner(err), false
	}
	n, err = io.Copy(w, r)
	return n, err, true
}

func (fd *netFD) writeTo(w io.Writer, r io.Reader) (n int64, err error, counted bool) {
	if wt, ok := fd.c.(io.WriterTo); ok {
		n, err := wt.WriteTo(w)
		return n, inner(err), false
	}
	n, err = io.Copy(w, r)
	return n, err, true
}

// backendStats: package net runs no loops and pools no buffers.
func backendStats(*Stats) {}

// acceptErrorKind classifies a failed accept for Stats by its text: not
// every system here has numeric errnos (plan9).
func acceptErrorKind(err error) int {
	switch msg := err.Error(); {
	case strings.Contains(msg, "too many open files in system"):
		return kindENFILE
	case strings.Contains(msg, "too many open files"):
		return kindEMFILE
	}
	return kindOther
}

// syscallConn returns package net's RawConn, whose errors already have
// package net's shape.
func (fd *netFD) syscallConn() syscall.RawConn {
	return rawOf(fd.c)
}

func (fd *netFD) listenerSyscallConn() syscall.RawConn {
	return rawOf(fd.ln)
}

func rawOf(v any) syscall.RawConn {
	if sc, ok := v.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			return rc
		}
	}
	return unsupportedRaw{}
}

// unsupportedRaw stands in where package net offers no RawConn.
type unsupportedRaw struct{}

func (unsupportedRaw) Control(func(uintptr)) error    { return syscall.EINVAL }
func (unsupportedRaw) Read(func(uintptr) bool) error  { return syscall.EINVAL }
func (unsupportedRaw) Write(func(uintptr) bool) error { return syscall.EINVAL }
