//go:build (linux || darwin || dragonfly || freebsd || netbsd || openbsd) && !netloop_stdnet

// The poll-based descriptor: every operation follows the protocol of
// loop.Desc (reference, direction lock, check, syscall, wait).

package netloop

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/netloop/netloop/bufpool"
	"github.com/netloop/netloop/loop"
)

// coalesceBelow: a stream Read with a smaller slice than this fills a pooled
// buffer instead, and the following small Reads are served from memory.
// net/http reads 4 KiB at a time and so always reads straight into its own
// buffer; TLS record headers and small protocol reads are coalesced.
const coalesceBelow = 4096

// syscallsAvoided counts Reads that parked without a read(2) (Stats).
var syscallsAvoided atomic.Uint64

// backendStats adds the loops' figures to a process-wide snapshot.
func backendStats(s *Stats) {
	ls := loop.ReadStats()
	s.Loops, s.LoopEvents, s.LoopWakeups, s.LoopStarved, s.LoopAssists = ls.Loops, ls.Events, ls.Batches, ls.Late, ls.Assists
	s.BatchedWrites, s.WriteBatches, s.BatchedReads = ls.Sends, ls.Flushes, ls.Recvs
	for _, l := range ls.PerLoop {
		s.PerLoop = append(s.PerLoop, LoopStats{Events: l.Events, Wakeups: l.Batches, Starved: l.Late, Assists: l.Assists,
			BatchedWrites: l.Sends, WriteBatches: l.Flushes, BatchedReads: l.Recvs})
	}
	s.SyscallsAvoided = syscallsAvoided.Load()
	s.RuntimeParks, s.RuntimeParkFDs = rtParks.Load(), int(rtOpen.Load())
	s.BuffersInUse = bufpool.InUse()
}

// acceptErrorKind classifies a failed accept for Stats.
func acceptErrorKind(err error) int {
	switch {
	case errors.Is(err, errMFILE):
		return kindEMFILE
	case errors.Is(err, errNFILE):
		return kindENFILE
	}
	return kindOther
}

// netFD is one socket driven by the loop.
type netFD struct {
	acct         accounting // Stats and MaxConns, for accepted connections
	d            *loop.Desc
	net          string // "tcp", "tcp4", "tcp6", "unix" or "unixpacket"
	laddr, raddr net.Addr
	stream       bool // SOCK_STREAM: Reads may coalesce
	// shortReadDrains: a short read means the socket was empty. True for
	// TCP where the poller reports everything that can stop a read short
	// (see loop.Desc.SetReadDrained); never for unix streams, whose reads
	// stop at messages carrying descriptors or credentials.
	shortReadDrains bool

	// Guarded by the read lock of d (and owned by Close once d is idle):
	// unread bytes pulled into a pooled buffer are rbuf.B[roff:].
	rbuf *bufpool.Buf
	roff int

	// rt lets readers wait in the runtime's poller while the loop is
	// starved (rtpark_poll.go); nil until the first such wait.
	rt atomic.Pointer[runtimePark]
}

func newFD(sysfd int, network string, laddr, raddr net.Addr, sotype, loops int) (*netFD, error) {
	d, err := loop.Register(sysfd, loops)
	if err != nil {
		return nil, err
	}
	_, tcp := laddr.(*net.TCPAddr)
	fd := &netFD{d: d, net: network, laddr: laddr, raddr: raddr, stream: sotype == sockStream,
		shortReadDrains: tcp && loop.ShortReadProvesEmpty}
	// As package net does, close a socket whose owner dropped it without
	// Close; methods keep fd alive while they run (runtime.KeepAlive).
	runtime.SetFinalizer(fd, (*netFD).finalize)
	return fd, nil
}

// name is what package net names the *os.File of File.
func (fd *netFD) name() string {
	var ls, rs string
	if fd.laddr != nil {
		ls = fd.laddr.String()
	}
	if fd.raddr != nil {
		rs = fd.raddr.String()
	}
	return fd.net + ":" + ls + "->" + rs
}

func (fd *netFD) Read(p []byte) (int, error) {
	d := fd.d
	if !fd.lock(true) {
		return 0, net.ErrClosed
	}
	defer fd.unlock(true)
	if len(p) == 0 {
		// As package net: a zero-byte Read returns at once (a read(2) of
		// nothing would look like EOF).
		return 0, nil
	}
	if err := d.CheckRead(); err != nil {
		return 0, err
	}
	if fd.rbuf != nil {
		n := copy(p, fd.rbuf.B[fd.roff:])
		fd.roff += n
		if fd.roff == len(fd.rbuf.B) {
			fd.releaseBuf()
		}
		return n, nil
	}
	if fd.stream && len(p) > maxRW {
		p = p[:maxRW]
	}
	coalesce := fd.stream && len(p) < coalesceBelow
	for {
		seq := d.ReadSeq()
		buf := p
		var b *bufpool.Buf
		var n int
		var err error
		how := rtNone
		if d.ParkInRuntime() || parkInRuntime.Load() {
			// Starved with more than one P: read, and wait for bytes
			// in the runtime's poller, as package net does.
			b, n, err, how = fd.rtRead(p, coalesce)
			if how == rtWoke {
				if err := d.CheckRead(); err != nil {
					return 0, err
				}
				continue
			}
		}
		if how == rtDone {
			if b != nil {
				buf = b.B
			}
		} else if d.ReadDrained(seq) {
			if rt := fd.rt.Load(); rt != nil {
				rt.drop(false) // the starvation is over
			}
			// Known empty since seq: park without a read that would only
			// return EAGAIN, and let the loop make the read when the
			// next event comes (on Linux, batched with its other
			// readers'; a small read gets a pooled buffer only then).
			syscallsAvoided.Add(1)
			r, ok, werr := d.WaitReadInto(seq, p, coalesce)
			if !ok {
				if werr != nil {
					return 0, werr
				}
				continue
			}
			seq, b = r.Seq, r.Buf
			if b != nil {
				buf = b.B
			}
			n, err = loopRead(buf, r)
		} else {
			if coalesce {
				b = bufpool.Get()
				buf = b.B
			}
			n, err = sysRead(d.FD(), buf)
		}
		switch {
		case err == errINTR:
			fd.putIf(b)
			continue
		case err == errAGAIN:
			fd.putIf(b)
			d.SetReadDrained(seq, true)
			continue
		case err != nil:
			fd.putIf(b)
			return 0, os.NewSyscallError("read", err)
		case n == 0:
			fd.putIf(b)
			return 0, io.EOF
		}
		if fd.shortReadDrains && n < len(buf) {
			d.SetReadDrained(seq, false)
		}
		if b == nil {
			return n, nil
		}
		m := copy(p, buf[:n])
		if m == n {
			bufpool.Put(b)
		} else {
			b.B = b.B[:n]
			fd.rbuf, fd.roff = b, m
		}
		return m, nil
	}
}

func (fd *netFD) putIf(b *bufpool.Buf) {
	if b != nil {
		bufpool.Put(b)
	}
}

// releaseBuf returns the coalescing buffer. Call with the read lock held,
// or from Close once no operation is left.
func (fd *netFD) releaseBuf() {
	if fd.rbuf != nil {
		bufpool.Put(fd.rbuf)
		fd.rbuf, fd.roff = nil, 0
	}
}

// lock takes a reference to fd's descriptor and then the lock of one
// direction (read or write), as every operation on the socket does first;
// it fails, holding nothing, once Close has begun. unlock undoes it.
//
// Callers defer unlock as their only deferred call: with three (KeepAlive,
// Decref, Unlock), Read's and Write's returns kept the compiler from
// open-coding them, and each call paid deferreturn's unwinding of its own
// frame (runtime.(*_panic).nextDefer in perf profiles of net/http on
// netloop; about 18 ns a Read in BenchmarkReadSmall). .ci/run fails on a
// defer in the library that is not open-coded.
func (fd *netFD) lock(read bool) bool {
	if !fd.d.Incref() {
		return false
	}
	if read {
		fd.d.LockRead()
	} else {
		fd.d.LockWrite()
	}
	return true
}

// unlock undoes lock. As a deferred call it also keeps fd reachable until
// the operation is over, so that its finalizer cannot close the descriptor
// meanwhile.
func (fd *netFD) unlock(read bool) {
	if read {
		fd.d.UnlockRead()
	} else {
		fd.d.UnlockWrite()
	}
	fd.d.Decref()
	runtime.KeepAlive(fd)
}

// locked runs f with fd locked (lock) in one direction and that direction
// checked open, as Read and Write do.
func (fd *netFD) locked(read bool, f func(d *loop.Desc) (int, error)) (int, error) {
	if !fd.lock(read) {
		return 0, net.ErrClosed
	}
	defer fd.unlock(read)
	check := fd.d.CheckWrite
	if read {
		check = fd.d.CheckRead
	}
	if err := check(); err != nil {
		return 0, err
	}
	return f(fd.d)
}

func (fd *netFD) Write(p []byte) (int, error) {
	d := fd.d
	if !fd.lock(false) {
		return 0, net.ErrClosed
	}
	defer fd.unlock(false)
	if err := d.CheckWrite(); err != nil {
		return 0, err
	}
	var nn int
	for {
		max := len(p)
		if fd.stream && max-nn > maxRW {
			max = nn + maxRW
		}
		seq := d.WriteSeq()
		n, err := sysSend(d, p[nn:max])
		nn += n
		if n > 0 {
			d.Wrote()
		}
		if nn == len(p) {
			// Done, or a zero-length write that failed (EPIPE after
			// CloseWrite): package net reports the error of that call.
			if err != nil && err != errAGAIN {
				return nn, os.NewSyscallError("write", err)
			}
			return nn, nil
		}
		switch {
		case err == errINTR:
			continue
		case err == errAGAIN:
			if err := d.WaitWrite(seq); err != nil {
				return nn, err
			}
			continue
		case err != nil:
			return nn, os.NewSyscallError("write", err)
		case n == 0:
			return nn, io.ErrUnexpectedEOF
		}
	}
}

// Close closes the socket once no operation is inside a syscall on it;
// operations still parked fail with net.ErrClosed.
func (fd *netFD) Close() error {
	runtime.SetFinalizer(fd, nil)
	fd.closeRuntimePark()
	return fd.d.Close(func(sysfd int) error {
		if fd.rbuf != nil {
			// Unread bytes were pulled out of the kernel's queue: close
			// as the kernel would with them still queued, with a reset.
			setLinger(sysfd, 0)
			fd.releaseBuf()
		}
		return sysClose(sysfd)
	})
}

func (fd *netFD) finalize() { closeAccounted(fd) }

// control runs f with the descriptor held open.
func (fd *netFD) control(f func(sysfd int) error) error {
	defer runtime.KeepAlive(fd)
	if !fd.d.Incref() {
		return net.ErrClosed
	}
	defer fd.d.Decref()
	return f(fd.d.FD())
}

func (fd *netFD) closeRead() error {
	return fd.control(func(s int) error { return sysShutdown(s, shutRD) })
}

func (fd *netFD) closeWrite() error {
	return fd.control(func(s int) error { return sysShutdown(s, shutWR) })
}

func (fd *netFD) setReadBuffer(bytes int) error {
	return fd.control(func(s int) error { return setReadBuffer(s, bytes) })
}

func (fd *netFD) setWriteBuffer(bytes int) error {
	return fd.control(func(s int) error { return setWriteBuffer(s, bytes) })
}

func (fd *netFD) setNoDelay(on bool) error {
	return fd.control(func(s int) error { return setNoDelay(s, on) })
}

func (fd *netFD) setKeepAlive(on bool) error {
	return fd.control(func(s int) error { return setKeepAlive(s, on) })
}

func (fd *netFD) setKeepAlivePeriod(d time.Duration) error {
	return fd.control(func(s int) error { return setKeepAliveIdle(s, d) })
}

func (fd *netFD) setKeepAliveConfig(config net.KeepAliveConfig) error {
	return fd.control(func(s int) error { return applyKeepAlive(s, config) })
}

func (fd *netFD) setLinger(sec int) error {
	return fd.control(func(s int) error { return setLinger(s, sec) })
}

// setUnlinkOnClose: the Listener itself removes the socket file.
func (fd *netFD) setUnlinkOnClose(bool) {}

// applyKeepAlive applies config field by field, stopping at the first
// error, in package net's order.
func applyKeepAlive(s int, config net.KeepAliveConfig) error {
	if err := setKeepAlive(s, config.Enable); err != nil {
		return err
	}
	if err := setKeepAliveIdle(s, config.Idle); err != nil {
		return err
	}
	if err := setKeepAliveInterval(s, config.Interval); err != nil {
		return err
	}
	return setKeepAliveCount(s, config.Count)
}

// readFrom copies r into the socket: sendfile where it applies, otherwise
// io.Copy through w (the Conn without its ReadFrom, whose Writes count
// themselves in Stats: counted reports that case).
func (fd *netFD) readFrom(r io.Reader, w io.Writer) (n int64, err error, counted bool) {
	if n, err, handled := fd.sendFile(r); handled {
		return n, err, false
	}
	n, err = io.Copy(w, r)
	return n, err, true
}

// writeTo copies the socket, read through r (the Conn without its
// WriteTo, whose Reads count themselves), into w.
func (fd *netFD) writeTo(w io.Writer, r io.Reader) (n int64, err error, counted bool) {
	n, err = io.Copy(w, r)
	return n, err, true
}

func (fd *netFD) syscallConn() syscall.RawConn { return &rawConn{fd: fd} }

func (fd *netFD) listenerSyscallConn() syscall.RawConn { return &rawListener{rawConn{fd: fd}} }

func (fd *netFD) SetDeadline(t time.Time) error {
	defer runtime.KeepAlive(fd)
	err := fd.d.SetDeadline(t)
	fd.deadlineChanged()
	return err
}

func (fd *netFD) SetReadDeadline(t time.Time) error {
	defer runtime.KeepAlive(fd)
	err := fd.d.SetReadDeadline(t)
	fd.deadlineChanged()
	return err
}

func (fd *netFD) SetWriteDeadline(t time.Time) error {
	defer runtime.KeepAlive(fd)
	return fd.d.SetWriteDeadline(t)
}

// dup returns a duplicate of the socket as an *os.File, as package net's
// File does (the duplicate is independent of netloop).
func (fd *netFD) dup() (*os.File, error) {
	var nfd int
	err := fd.control(func(s int) (err error) {
		nfd, err = sysDup(s)
		return err
	})
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(nfd), fd.name()), nil
}

// rawRead is syscall.RawConn.Read: f runs with the read lock held until it
// reports done; between calls the goroutine parks until the next read event.
func (fd *netFD) rawRead(f func(uintptr) bool) error {
	d := fd.d
	if !fd.lock(true) {
		return net.ErrClosed
	}
	defer fd.unlock(true)
	if err := d.CheckRead(); err != nil {
		return err
	}
	for {
		seq := d.ReadSeq()
		if f(uintptr(d.FD())) {
			return nil
		}
		if err := d.WaitRead(seq); err != nil {
			return err
		}
	}
}

// rawWrite is rawRead for the write direction.
func (fd *netFD) rawWrite(f func(uintptr) bool) error {
	d := fd.d
	if !fd.lock(false) {
		return net.ErrClosed
	}
	defer fd.unlock(false)
	if err := d.CheckWrite(); err != nil {
		return err
	}
	for {
		seq := d.WriteSeq()
		if f(uintptr(d.FD())) {
			return nil
		}
		if err := d.WaitWrite(seq); err != nil {
			return err
		}
	}
}

// rawConn implements syscall.RawConn with package net's error shapes.
type rawConn struct{ fd *netFD }

func (c *rawConn) Control(f func(uintptr)) error {
	err := c.fd.control(func(s int) error { f(uintptr(s)); return nil })
	if err != nil {
		return opError(opRawCtl, c.fd.net, nil, c.fd.laddr, err)
	}
	return nil
}

func (c *rawConn) Read(f func(uintptr) bool) error {
	if err := c.fd.rawRead(f); err != nil {
		return opError(opRawRead, c.fd.net, c.fd.laddr, c.fd.raddr, err)
	}
	return nil
}

func (c *rawConn) Write(f func(uintptr) bool) error {
	if err := c.fd.rawWrite(f); err != nil {
		return opError(opRawWrite, c.fd.net, c.fd.laddr, c.fd.raddr, err)
	}
	return nil
}

// rawListener is a listener's RawConn: as with package net, only Control
// works.
type rawListener struct{ rawConn }

func (l *rawListener) Read(func(uintptr) bool) error  { return syscall.EINVAL }
func (l *rawListener) Write(func(uintptr) bool) error { return syscall.EINVAL }
