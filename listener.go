// Package netloop is a drop-in replacement for net.Listen whose connections
// are driven by netloop's own event loop (epoll on Linux) instead of the Go
// runtime's network poller, with pooled read buffers.
//
//	ln, err := netloop.Listen("tcp", ":8080") // instead of net.Listen
//	if err != nil { ... }
//	http.Serve(ln, handler)                    // or grpc, tls.NewListener, ...
//
// The listener is a net.Listener and every accepted connection a net.Conn
// that behaves as package net's do: the same methods, errors (*net.OpError
// wrapping *os.SyscallError, net.ErrClosed or os.ErrDeadlineExceeded; a
// plain io.EOF), deadlines and close semantics, and the same socket
// defaults (TCP_NODELAY, keep-alive as net.ListenConfig's zero value,
// SO_REUSEADDR, close-on-exec). The concrete types *Listener and *Conn carry
// what code asserts on *net.TCPListener, *net.TCPConn and *net.UnixConn.
//
// # How it works
//
// Listen creates the listening socket exactly as package net does (so
// addresses, errors and options are identical), then takes it over: the
// socket leaves the runtime's poller and joins netloop's. Each accepted
// socket is registered once, edge-triggered, with one of a process-wide
// group of event loops (one per GOMAXPROCS by default). A Read serves bytes
// already pulled into a pooled buffer, or reads straight into the caller's
// slice; when the socket is known to be empty the goroutine parks without a
// failing read(2) until its loop reports readiness, a deadline passes or the
// connection is closed. A Write writes from the calling goroutine and parks
// only when the send buffer is full. The loops start with the first Listen
// and stop when the last listener and connection are closed.
package netloop

import (
	"context"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// ListenConfig contains options for listening to an address, shaped like
// net.ListenConfig (its zero value is useful and means the same), plus
// netloop's own knobs.
type ListenConfig struct {
	// Control, if not nil, is called after creating the network connection
	// but before binding it to the operating system, as in net.ListenConfig.
	Control func(network, address string, c syscall.RawConn) error

	// KeepAlive specifies the keep-alive period for network connections
	// accepted by this listener, as in net.ListenConfig: zero enables
	// keep-alives with package net's defaults; negative disables them
	// unless KeepAliveConfig.Enable is set.
	KeepAlive time.Duration

	// KeepAliveConfig specifies the keep-alive probe configuration for
	// accepted connections when KeepAliveConfig.Enable is true, as in
	// net.ListenConfig.
	KeepAliveConfig net.KeepAliveConfig

	// Loops is the number of event loops the listener's connections are
	// spread over. Zero means runtime.GOMAXPROCS(0). The loops are shared by
	// every listener in the process; a listener that asks for more than are
	// running adds loops.
	Loops int

	// MaxConns caps the connections accepted by the listener and not yet
	// closed; zero means no cap. At the cap, Accept waits (for a Close, the
	// listener's deadline or its Close) without taking a connection from
	// the kernel, whose backlog holds new peers meanwhile; once the backlog
	// is full the kernel drops new SYNs and clients retry. http.Server's
	// accept loop simply blocks there, and serves again as soon as a
	// connection closes (set its IdleTimeout so idle keep-alive
	// connections make room).
	MaxConns int
}

// Listen announces on the local network address, as net.Listen does. The
// network must be "tcp", "tcp4", "tcp6", "unix" or "unixpacket"; see
// net.Listen for the address forms.
func Listen(network, address string) (net.Listener, error) {
	var lc ListenConfig
	return lc.Listen(context.Background(), network, address)
}

// Listen announces on the local network address, as
// (*net.ListenConfig).Listen does. The returned net.Listener is a *Listener.
func (lc *ListenConfig) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	l, err := lc.listen(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// FileListener returns a copy of the network listener corresponding to the
// open file f, as net.FileListener does (systemd socket activation, a
// listener handed over by a parent process for a zero-downtime restart). It
// is the caller's responsibility to close the returned listener when
// finished; closing it does not affect f, and closing f does not affect it.
func FileListener(f *os.File) (net.Listener, error) {
	var lc ListenConfig
	return lc.FileListener(f)
}

// FileListener is FileListener with the connection options of lc.
func (lc *ListenConfig) FileListener(f *os.File) (net.Listener, error) {
	l, err := lc.fileListener(f)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Listener is a TCP or unix stream listener whose accepted connections are
// driven by netloop. It carries the methods of *net.TCPListener (and
// SetUnlinkOnClose of *net.UnixListener).
//
// Multiple goroutines may invoke methods on a Listener simultaneously.
type Listener struct {
	fd  *netFD
	lc  ListenConfig
	cnt *counters // shared with the accepted Conns

	// MaxConns: a token in slots per open connection; nil without a cap.
	slots chan struct{}
	done  chan struct{} // closed by Close

	dlMu      sync.Mutex    // guards dl and dlChanged
	dl        time.Time     // the deadline, for Accept waiting at the cap
	dlChanged chan struct{} // closed and replaced by SetDeadline
	closeOnce sync.Once

	// unix sockets: the path to remove on Close (unless disabled).
	path       string
	unlinkMu   sync.Mutex // guards unlink
	unlink     bool
	unlinkOnce sync.Once
}

var (
	_ net.Listener = (*Listener)(nil)
	_ syscall.Conn = (*Listener)(nil)
)

func (l *Listener) ok() bool { return l != nil && l.fd != nil }

// Accept waits for and returns the next connection to the listener, a
// *Conn. A connection is taken from the kernel only when Accept is called.
func (l *Listener) Accept() (net.Conn, error) {
	if !l.ok() {
		return nil, syscall.EINVAL
	}
	if err := l.acquireSlot(); err != nil {
		return nil, opError(opAccept, l.fd.net, nil, l.fd.laddr, err)
	}
	c, err := l.accept()
	if err != nil {
		l.releaseSlot()
		if _, ok := err.(*os.SyscallError); ok {
			l.countAcceptError(err)
		}
		return nil, opError(opAccept, l.fd.net, nil, l.fd.laddr, err)
	}
	c.fd.acct = accounting{cnt: l.cnt, slots: l.slots}
	l.countAccept()
	return c, nil
}

// init sets up the parts of l common to every backend.
func (l *Listener) init() *Listener {
	l.cnt = new(counters)
	l.done = make(chan struct{})
	l.dlChanged = make(chan struct{})
	if l.lc.MaxConns > 0 {
		l.slots = make(chan struct{}, l.lc.MaxConns)
	}
	return l
}

// acquireSlot waits, if MaxConns connections are open, until one closes,
// the deadline passes or l is closed.
func (l *Listener) acquireSlot() error {
	if l.slots == nil {
		return nil
	}
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	l.cnt.acceptWaits.Add(1)
	global.acceptWaits.Add(1)
	for {
		l.dlMu.Lock()
		dl, changed := l.dl, l.dlChanged
		l.dlMu.Unlock()
		var expired <-chan time.Time
		var timer *time.Timer
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return os.ErrDeadlineExceeded
			}
			timer = time.NewTimer(d)
			expired = timer.C
		}
		select {
		case l.slots <- struct{}{}:
			stopTimer(timer)
			return nil
		case <-l.done:
			stopTimer(timer)
			return net.ErrClosed
		case <-expired:
			return os.ErrDeadlineExceeded
		case <-changed:
			stopTimer(timer)
		}
	}
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

func (l *Listener) releaseSlot() {
	if l.slots != nil {
		<-l.slots
	}
}

// Close stops listening on the address. Already accepted connections are
// not closed. A pending Accept returns an error wrapping net.ErrClosed.
func (l *Listener) Close() error {
	if !l.ok() {
		return syscall.EINVAL
	}
	l.closeOnce.Do(func() { close(l.done) })
	l.unlinkOnce.Do(func() {
		l.unlinkMu.Lock()
		defer l.unlinkMu.Unlock()
		if l.unlink && l.path != "" && l.path[0] != '@' {
			os.Remove(l.path)
		}
	})
	if err := l.fd.Close(); err != nil {
		return opError(opClose, l.fd.net, nil, l.fd.laddr, err)
	}
	return nil
}

// Addr returns the listener's network address, a *net.TCPAddr or
// *net.UnixAddr.
func (l *Listener) Addr() net.Addr {
	if !l.ok() {
		return nil
	}
	return l.fd.laddr
}

// SetDeadline sets the deadline associated with the listener. A zero time
// value disables the deadline. As with *net.TCPListener, the error is not
// wrapped in a *net.OpError.
func (l *Listener) SetDeadline(t time.Time) error {
	if !l.ok() {
		return syscall.EINVAL
	}
	if err := l.fd.SetReadDeadline(t); err != nil {
		return err
	}
	l.dlMu.Lock()
	l.dl = t
	close(l.dlChanged)
	l.dlChanged = make(chan struct{})
	l.dlMu.Unlock()
	return nil
}

// SetUnlinkOnClose sets whether the socket file of a unix listener is
// removed when the listener is closed (the default for a socket Listen
// created), as (*net.UnixListener).SetUnlinkOnClose.
func (l *Listener) SetUnlinkOnClose(unlink bool) {
	if !l.ok() {
		return
	}
	l.unlinkMu.Lock()
	l.unlink = unlink
	l.unlinkMu.Unlock()
	l.fd.setUnlinkOnClose(unlink)
}

// File returns a copy of the underlying socket as an *os.File. It is the
// caller's responsibility to close it; closing l does not affect it.
func (l *Listener) File() (*os.File, error) {
	if !l.ok() {
		return nil, syscall.EINVAL
	}
	f, err := l.fd.dup()
	if err != nil {
		return nil, opError(opFile, l.fd.net, nil, l.fd.laddr, err)
	}
	return f, nil
}

// SyscallConn returns a raw network connection. As with package net's
// listeners, only its Control method works; Read and Write return
// syscall.EINVAL.
func (l *Listener) SyscallConn() (syscall.RawConn, error) {
	if !l.ok() {
		return nil, syscall.EINVAL
	}
	return l.fd.listenerSyscallConn(), nil
}
