package netloop

import (
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// Conn is a connection accepted by a netloop Listener: a TCP or unix socket
// driven by netloop's event loop. It implements net.Conn and carries what
// code commonly asserts on a *net.TCPConn or *net.UnixConn (CloseRead,
// CloseWrite, SetNoDelay, SetKeepAlive*, SetLinger, SetReadBuffer,
// SetWriteBuffer, SyscallConn, File, io.ReaderFrom, io.WriterTo).
//
// Multiple goroutines may invoke methods on a Conn simultaneously. Errors
// are those of package net: *net.OpError wrapping an *os.SyscallError,
// net.ErrClosed or os.ErrDeadlineExceeded, and a plain io.EOF at the end
// of the stream.
type Conn struct {
	fd *netFD
}

var (
	_ net.Conn      = (*Conn)(nil)
	_ io.ReaderFrom = (*Conn)(nil)
	_ io.WriterTo   = (*Conn)(nil)
	_ syscall.Conn  = (*Conn)(nil)
)

func (c *Conn) ok() bool { return c != nil && c.fd != nil }

func (c *Conn) opError(op string, err error) error {
	return opError(op, c.fd.net, c.fd.laddr, c.fd.raddr, err)
}

// setError is the shape package net gives errors of the deadline and
// buffer-size setters: no source, the local address as Addr.
func (c *Conn) setError(err error) error {
	return opError(opSet, c.fd.net, nil, c.fd.laddr, err)
}

// Read implements the net.Conn Read method.
func (c *Conn) Read(b []byte) (int, error) {
	if !c.ok() {
		return 0, syscall.EINVAL
	}
	n, err := c.fd.Read(b)
	c.countRead(n)
	if err != nil && err != io.EOF {
		err = c.opError(opRead, err)
	}
	return n, err
}

func (c *Conn) countRead(n int) {
	if n > 0 && c.fd.acct.cnt != nil {
		c.fd.acct.cnt.read.Add(uint64(n))
		global.read.Add(uint64(n))
	}
}

func (c *Conn) countWritten(n int) {
	if n > 0 && c.fd.acct.cnt != nil {
		c.fd.acct.cnt.written.Add(uint64(n))
		global.written.Add(uint64(n))
	}
}

// Write implements the net.Conn Write method. It returns when every byte
// is in the kernel's send buffer, or with an error and the count written.
func (c *Conn) Write(b []byte) (int, error) {
	if !c.ok() {
		return 0, syscall.EINVAL
	}
	n, err := c.fd.Write(b)
	c.countWritten(n)
	if err != nil {
		err = c.opError(opWrite, err)
	}
	return n, err
}

// Close closes the connection. Pending Read and Write calls return an error
// wrapping net.ErrClosed; a second Close reports it too.
func (c *Conn) Close() error {
	if !c.ok() {
		return syscall.EINVAL
	}
	if err := closeAccounted(c.fd); err != nil {
		return c.opError(opClose, err)
	}
	return nil
}

// LocalAddr returns the local network address (*net.TCPAddr or
// *net.UnixAddr).
func (c *Conn) LocalAddr() net.Addr {
	if !c.ok() {
		return nil
	}
	return c.fd.laddr
}

// RemoteAddr returns the remote network address.
func (c *Conn) RemoteAddr() net.Addr {
	if !c.ok() {
		return nil
	}
	return c.fd.raddr
}

// SetDeadline implements the net.Conn SetDeadline method. A deadline change
// applies to Reads and Writes already blocked.
func (c *Conn) SetDeadline(t time.Time) error {
	if !c.ok() {
		return syscall.EINVAL
	}
	if err := c.fd.SetDeadline(t); err != nil {
		return c.setError(err)
	}
	return nil
}

// SetReadDeadline implements the net.Conn SetReadDeadline method.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if !c.ok() {
		return syscall.EINVAL
	}
	if err := c.fd.SetReadDeadline(t); err != nil {
		return c.setError(err)
	}
	return nil
}

// SetWriteDeadline implements the net.Conn SetWriteDeadline method.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if !c.ok() {
		return syscall.EINVAL
	}
	if err := c.fd.SetWriteDeadline(t); err != nil {
		return c.setError(err)
	}
	return nil
}

// SetReadBuffer sets the size of the operating system's receive buffer
// associated with the connection.
func (c *Conn) SetReadBuffer(bytes int) error {
	if !c.ok() {
		return syscall.EINVAL
	}
	if err := c.fd.setReadBuffer(bytes); err != nil {
		return c.setError(err)
	}
	return nil
}

// SetWriteBuffer sets the size of the operating system's transmit buffer
// associated with the connection.
func (c *Conn) SetWriteBuffer(bytes int) error {
	if !c.ok() {
		return syscall.EINVAL
	}
	if err := c.fd.setWriteBuffer(bytes); err != nil {
		return c.setError(err)
	}
	return nil
}

// sockopt applies a socket option with the error shape of *net.TCPConn's
// option setters (which, unlike SetReadBuffer, carry both addresses).
func (c *Conn) sockopt(f func(fd *netFD) error) error {
	if !c.ok() {
		return syscall.EINVAL
	}
	if err := f(c.fd); err != nil {
		return c.opError(opSet, err)
	}
	return nil
}

// SetNoDelay controls whether the operating system should delay packet
// transmission in hopes of sending fewer packets (Nagle's algorithm). The
// default is true (no delay), as with package net.
func (c *Conn) SetNoDelay(noDelay bool) error {
	return c.sockopt(func(fd *netFD) error { return fd.setNoDelay(noDelay) })
}

// SetKeepAlive sets whether the operating system should send keep-alive
// messages on the connection.
func (c *Conn) SetKeepAlive(keepalive bool) error {
	return c.sockopt(func(fd *netFD) error { return fd.setKeepAlive(keepalive) })
}

// SetKeepAlivePeriod sets the duration the connection needs to remain idle
// before TCP starts sending keepalive probes.
func (c *Conn) SetKeepAlivePeriod(d time.Duration) error {
	return c.sockopt(func(fd *netFD) error { return fd.setKeepAlivePeriod(d) })
}

// SetKeepAliveConfig configures keep-alive messages sent by the operating
// system, as (*net.TCPConn).SetKeepAliveConfig does.
func (c *Conn) SetKeepAliveConfig(config net.KeepAliveConfig) error {
	return c.sockopt(func(fd *netFD) error { return fd.setKeepAliveConfig(config) })
}

// SetLinger sets the behavior of Close on a connection which still has data
// waiting to be sent or to be acknowledged, as (*net.TCPConn).SetLinger.
func (c *Conn) SetLinger(sec int) error {
	return c.sockopt(func(fd *netFD) error { return fd.setLinger(sec) })
}

// CloseRead shuts down the reading side of the connection.
func (c *Conn) CloseRead() error {
	if !c.ok() {
		return syscall.EINVAL
	}
	if err := c.fd.closeRead(); err != nil {
		return c.opError(opClose, err)
	}
	return nil
}

// CloseWrite shuts down the writing side of the connection.
func (c *Conn) CloseWrite() error {
	if !c.ok() {
		return syscall.EINVAL
	}
	if err := c.fd.closeWrite(); err != nil {
		return c.opError(opClose, err)
	}
	return nil
}

// File returns a copy of the underlying socket as an *os.File. It is the
// caller's responsibility to close f when finished. Closing c does not
// affect f, and closing f does not affect c.
func (c *Conn) File() (f *os.File, err error) {
	if !c.ok() {
		return nil, syscall.EINVAL
	}
	f, err = c.fd.dup()
	if err != nil {
		return nil, c.opError(opFile, err)
	}
	return f, nil
}

// SyscallConn returns a raw network connection. Its Read and Write wait
// for readiness through netloop's loop, as package net's do through the
// runtime's poller.
//
// A Read with a slice under 4 KiB may have pulled more bytes from the
// socket than it returned; those are served by the next Reads and are not
// seen by a RawConn.Read (or by the descriptor of File) that reads the
// socket itself. Code that mixes the two should read with slices of 4 KiB
// or more.
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	if !c.ok() {
		return nil, syscall.EINVAL
	}
	return c.fd.syscallConn(), nil
}

// ReadFrom implements the io.ReaderFrom ReadFrom method.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if !c.ok() {
		return 0, syscall.EINVAL
	}
	n, err := c.readFrom(r)
	if err != nil && err != io.EOF {
		err = c.opError(opReadFrom, err)
	}
	return n, err
}

// WriteTo implements the io.WriterTo WriteTo method.
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	if !c.ok() {
		return 0, syscall.EINVAL
	}
	n, err, handled := c.spliceTo(w) // counted by splice
	if !handled {
		m, werr, counted := c.fd.writeTo(w, readerOnly{c})
		if !counted {
			c.countRead(int(m))
		}
		n, err = n+m, werr
	}
	if err != nil && err != io.EOF {
		err = c.opError(opWriteTo, err)
	}
	return n, err
}

// readFrom copies r to c, in the kernel where the platform can (splice from
// a stream socket on Linux, as package net; sendfile from a regular file),
// otherwise through io.Copy.
func (c *Conn) readFrom(r io.Reader) (int64, error) {
	n0, err, handled := c.spliceFrom(r) // counted by splice
	if handled {
		return n0, err
	}
	n, err, counted := c.fd.readFrom(r, writerOnly{c})
	if !counted {
		c.countWritten(int(n))
	}
	return n0 + n, err
}

// writerOnly and readerOnly hide ReadFrom and WriteTo from io.Copy, which
// would otherwise call straight back into them.
type writerOnly struct{ io.Writer }

type readerOnly struct{ io.Reader }
