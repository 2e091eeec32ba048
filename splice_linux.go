//go:build linux && !netloop_stdnet

package netloop

import (
	"errors"
	"io"
	"net"
	"os"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/netloop/netloop/bufpool"
	"github.com/netloop/netloop/loop"
	"golang.org/x/sys/unix"
)

// maxSpliceSize is the most one splice(2) is asked to move and the size the
// pipe is grown to, as package net: the default /proc/sys/fs/pipe-max-size.
const maxSpliceSize = 1 << 20

// splicePipe is a pipe for splicing, pooled as package net pools them; data
// counts the bytes in it (a pipe left holding some is closed, not reused).
type splicePipe struct {
	r, w int
	data int
}

var pipePool = sync.Pool{New: func() any {
	var fds [2]int
	if unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK) != nil {
		return nil
	}
	// Fewer, larger splices; a smaller pipe still works.
	unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, maxSpliceSize)
	p := &splicePipe{r: fds[0], w: fds[1]}
	runtime.SetFinalizer(p, (*splicePipe).close)
	return p
}}

func (p *splicePipe) close() {
	unix.Close(p.r)
	unix.Close(p.w)
}

// putPipe returns p to the pool, or closes it if it holds bytes.
func putPipe(p *splicePipe) {
	if p.data != 0 {
		runtime.SetFinalizer(p, nil)
		p.close()
		return
	}
	pipePool.Put(p)
}

// splicedBytes counts bytes moved by splice into or out of netloop sockets
// (tests read it).
var splicedBytes atomic.Uint64

func splicedBytesCount() uint64 { return splicedBytes.Load() }

// testHookDrain, when set (by tests only), wraps the source of every splice;
// it fakes kernels that cannot splice from a socket.
var testHookDrain func(drainFunc) drainFunc

// drainFunc moves up to max bytes from a socket into the empty pipe pw,
// parking while the socket has none; (0, nil) is end of file.
type drainFunc func(pw, max int) (int, error)

// pumpFunc moves the n bytes the pipe pr holds into a socket, parking while
// its send buffer is full.
type pumpFunc func(pr, n int) (int, error)

// spliceFrom copies r into c in the kernel, through a pipe, when r is a
// stream socket: a *Conn, a *net.TCPConn or a "unix" *net.UnixConn (also as
// their WriteTo hands them to ReadFrom), or an *io.LimitedReader of one:
// what package net's TCPConn.ReadFrom splices.
// handled is false when nothing was done and io.Copy should run instead.
func (c *Conn) spliceFrom(r io.Reader) (written int64, err error, handled bool) {
	if !c.fd.stream {
		return 0, nil, false
	}
	remain := int64(1<<63 - 1)
	lr, limited := r.(*io.LimitedReader)
	if limited {
		remain, r = lr.N, lr.R
		if remain <= 0 {
			return 0, nil, true
		}
	}
	src, drain := spliceSource(r)
	if drain == nil {
		return 0, nil, false
	}
	written, err, handled = splice(c, c.fd.splicePump, src, drain, remain)
	if limited {
		lr.N -= written
	}
	return written, err, handled
}

// spliceTo copies c into w in the kernel, through a pipe, when w is a
// package-net stream socket (*net.TCPConn, "unix" *net.UnixConn). A
// netloop w gets there by the other way round: WriteTo's io.Copy calls
// w.ReadFrom, which splices from c, as package net's TCPConn.WriteTo does.
func (c *Conn) spliceTo(w io.Writer) (written int64, err error, handled bool) {
	if !c.fd.stream {
		return 0, nil, false
	}
	switch w := w.(type) {
	case *net.TCPConn:
		if w == nil {
			return 0, nil, false // io.Copy gets package net's error
		}
		written, err, handled = splice(nil, rawPump(w), c, c.fd.spliceDrain, 1<<63-1)
		if err != nil {
			// Where package net splices TCP to TCP, the error comes from
			// the sink's ReadFrom.
			err = &net.OpError{Op: "readfrom", Net: tcpNetwork(w), Source: w.LocalAddr(), Addr: w.RemoteAddr(), Err: err}
		}
		return written, err, handled
	case *net.UnixConn:
		if isUnixStream(w) {
			return splice(nil, rawPump(w), c, c.fd.spliceDrain, 1<<63-1)
		}
	}
	return 0, nil, false
}

// tcpNetwork returns the network c was dialled or listened on ("tcp",
// "tcp4" or "tcp6"), which package net names in its errors and keeps in an
// unexported field; its address says only "tcp", which is what it falls
// back to should package net change. For errors only.
func tcpNetwork(c *net.TCPConn) string {
	if fd := reflect.ValueOf(c).Elem().FieldByName("fd"); fd.Kind() == reflect.Pointer && !fd.IsNil() {
		if nw := fd.Elem().FieldByName("net"); nw.Kind() == reflect.String && nw.String() != "" {
			return nw.String()
		}
	}
	return c.LocalAddr().Network()
}

// spliceSource returns how to drain r, nil if it cannot be spliced from,
// and r itself when it is a netloop connection.
func spliceSource(r io.Reader) (*Conn, drainFunc) {
	if ro, ok := r.(readerOnly); ok { // from WriteTo's io.Copy
		r = ro.Reader
	}
	switch s := r.(type) {
	case *Conn:
		if s.ok() && s.fd.stream {
			return s, s.fd.spliceDrain
		}
		return nil, nil
	case *net.TCPConn:
		return nil, rawDrain(s)
	case *net.UnixConn:
		if isUnixStream(s) {
			return nil, rawDrain(s)
		}
		return nil, nil
	}
	// Package net's TCPConn.WriteTo hands the connection to ReadFrom
	// wrapped in its unexported tcpConnWithoutWriteTo (a struct embedding
	// the *TCPConn); its own ReadFrom splices from it, and so does this
	// one. Should package net change that, io.Copy does the work.
	v := reflect.ValueOf(r)
	if v.Kind() == reflect.Struct && v.Type().PkgPath() == "net" && v.Type().Name() == "tcpConnWithoutWriteTo" {
		if f := v.FieldByName("TCPConn"); f.IsValid() && f.CanInterface() {
			if s, ok := f.Interface().(*net.TCPConn); ok && s != nil {
				return nil, rawDrain(s)
			}
		}
	}
	return nil, nil
}

// splice moves up to remain bytes from a source (drain; src when it is a
// netloop connection) to a sink (pump; dst when it is one) through a pooled
// pipe, as package net does: handled is false when no pipe could be had or
// the kernel cannot splice from the source (written then counts only bytes
// that were buffered). It counts the bytes in both connections' Stats.
func splice(dst *Conn, pump pumpFunc, src *Conn, drain drainFunc, remain int64) (written int64, err error, handled bool) {
	if testHookDrain != nil {
		drain = testHookDrain(drain)
	}
	p, _ := pipePool.Get().(*splicePipe)
	if p == nil {
		return 0, nil, false
	}
	defer putPipe(p)
	// Stats count what each side really moved: the source when bytes
	// leave it, the sink when they reach it (bytes lost in the pipe when
	// the sink fails were still read).
	read := func(n int) {
		if src != nil {
			src.countRead(n)
		}
	}
	wrote := func(n int) {
		written += int64(n)
		remain -= int64(n)
		if dst != nil {
			dst.countWritten(n)
		}
	}
	if src != nil {
		// Bytes a small Read pulled into src's buffer go first.
		b, done, terr := src.fd.takeBuffered(remain)
		err = terr
		if len(b) > 0 {
			read(len(b))
			var n int
			if dst != nil {
				n, err = dst.fd.Write(b)
			} else {
				n, err = pipeThrough(p, pump, b)
			}
			wrote(n)
		}
		done()
	}
	spliced := false
	for err == nil && remain > 0 {
		var inPipe, n int
		inPipe, err = drain(p.w, int(min(remain, maxSpliceSize)))
		if err != nil && !spliced && errors.Is(err, syscall.EINVAL) {
			// As package net: the kernel cannot splice from this socket,
			// and the failed call consumed nothing, so io.Copy takes
			// over (after what was written above).
			return written, nil, false
		}
		if err != nil || inPipe == 0 {
			break
		}
		spliced = true
		read(inPipe)
		p.data += inPipe
		n, err = pump(p.r, inPipe)
		p.data -= n
		wrote(n)
		splicedBytes.Add(uint64(n))
	}
	return written, err, true
}

// pipeThrough writes b into the empty pipe p and pumps it out, in as many
// rounds as the pipe's capacity needs.
func pipeThrough(p *splicePipe, pump pumpFunc, b []byte) (int, error) {
	written := 0
	for written < len(b) {
		n, err := unix.Write(p.w, b[written:])
		if err != nil {
			return written, os.NewSyscallError("write", err)
		}
		p.data += n
		m, err := pump(p.r, n)
		p.data -= m
		written += m
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// takeBuffered takes out of fd up to max of the bytes a small Read pulled
// into its pooled buffer; done gives the buffer back once they are written.
// Nothing of fd stays locked or referenced while they go out, so closing it
// does not wait for the sink (package net, too, locks the source only while
// it drains it).
func (fd *netFD) takeBuffered(max int64) (b []byte, done func(), err error) {
	done = func() {}
	_, err = fd.locked(true, func(*loop.Desc) (int, error) {
		if fd.rbuf == nil {
			return 0, nil
		}
		rest := fd.rbuf.B[fd.roff:]
		if int64(len(rest)) > max {
			b = append([]byte(nil), rest[:max]...)
			fd.roff += int(max)
			return 0, nil
		}
		buf := fd.rbuf
		b, fd.rbuf, fd.roff = rest, nil, 0
		done = func() { bufpool.Put(buf) }
		return 0, nil
	})
	return b, done, err
}

// spliceDrain is the drainFunc of a netloop socket.
func (fd *netFD) spliceDrain(pw, max int) (int, error) {
	return fd.locked(true, func(d *loop.Desc) (int, error) {
		for {
			seq := d.ReadSeq()
			// The pipe is empty, so EAGAIN means the socket is.
			n, err := unix.Splice(d.FD(), nil, pw, nil, max, unix.SPLICE_F_NONBLOCK)
			switch {
			case err == errINTR:
			case err == errAGAIN:
				if err := d.WaitRead(seq); err != nil {
					return 0, err
				}
			case err != nil:
				return 0, os.NewSyscallError("splice", err)
			default:
				return int(n), nil
			}
		}
	})
}

// splicePump is the pumpFunc of a netloop socket.
func (fd *netFD) splicePump(pr, n int) (int, error) {
	return fd.locked(false, func(d *loop.Desc) (int, error) {
		written := 0
		for written < n {
			seq := d.WriteSeq()
			m, err := unix.Splice(pr, nil, d.FD(), nil, n-written, unix.SPLICE_F_NONBLOCK)
			switch {
			case m > 0:
				written += int(m)
			case err == errINTR:
			case err == errAGAIN:
				if err := d.WaitWrite(seq); err != nil {
					return written, err
				}
			case err != nil:
				return written, os.NewSyscallError("splice", err)
			default: // 0 bytes from a pipe holding some: cannot happen
				return written, io.ErrNoProgress
			}
		}
		return written, nil
	})
}

// rawDrain is the drainFunc of a package-net socket: its RawConn parks in
// the runtime's poller and honours the socket's read deadline.
func rawDrain(c syscall.Conn) drainFunc {
	return func(pw, max int) (int, error) {
		var n int
		var serr error
		err := rawIO(c, true, func(s int) bool {
			for {
				// x/sys's Splice returns an int on 32-bit Linux, int64 on
				// 64-bit.
				m, e := unix.Splice(s, nil, pw, nil, max, unix.SPLICE_F_NONBLOCK)
				n, serr = int(m), e
				if serr != errINTR {
					return serr != errAGAIN
				}
			}
		})
		if err == nil && serr != nil {
			err = os.NewSyscallError("splice", serr)
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
}

// rawPump is the pumpFunc of a package-net socket.
func rawPump(c syscall.Conn) pumpFunc {
	return func(pr, n int) (int, error) {
		written := 0
		var serr error
		err := rawIO(c, false, func(s int) bool {
			for written < n {
				m, err := unix.Splice(pr, nil, s, nil, n-written, unix.SPLICE_F_NONBLOCK)
				switch {
				case m > 0:
					written += int(m)
				case err == errINTR:
				case err == errAGAIN:
					return false // wait for room, then called again
				case err != nil:
					serr = err
					return true
				default:
					serr = io.ErrNoProgress
					return true
				}
			}
			return true
		})
		if err == nil && serr != nil {
			if serr != io.ErrNoProgress {
				serr = os.NewSyscallError("splice", serr)
			}
			err = serr
		}
		return written, err
	}
}

// rawIO runs f through c's RawConn (Read or Write). The RawConn wraps its
// own failures (closed, deadline) in an OpError "raw-read" or "raw-write";
// package net's ReadFrom and WriteTo report the cause, so that is returned.
func rawIO(c syscall.Conn, read bool, f func(s int) bool) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	g := func(s uintptr) bool { return f(int(s)) }
	if read {
		err = rc.Read(g)
	} else {
		err = rc.Write(g)
	}
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err
	}
	return err
}

// isUnixStream reports whether c is a "unix" (stream) socket, from the
// network its address names, as package net checks its own fd.net: no
// syscall, and a closed connection still qualifies (its error then comes
// from the splice, as net's does).
func isUnixStream(c *net.UnixConn) bool {
	a, ok := c.LocalAddr().(*net.UnixAddr)
	return ok && a != nil && a.Net == "unix"
}
