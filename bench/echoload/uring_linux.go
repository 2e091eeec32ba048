package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/netloop/netloop/internal/uring"
	"golang.org/x/sys/unix"
)

// The uring engine drives every connection from one thread through one
// io_uring: each connection has a send and a receive in flight at a time,
// and one io_uring_enter submits what the last batch of completions asked
// for and waits for the next. The kernel's TCP work per message is the
// same as the goroutine engine's; what it saves is the client's own
// syscalls (about three per message there: write, a read that finds the
// socket empty, the read of the echo, plus a share of epoll_wait) and its
// goroutine switches, so that the client, not the server, has CPU to spare.

const (
	tickData           = ^uint64(0)
	kindSend, kindRecv = 0, 1
)

type ring struct {
	*uring.Ring
	queued uint32         // SQEs written past the tail, not yet published
	tick   uring.Timespec // the tick's period; the kernel reads it at submission
}

func openRing(entries uint32) (*ring, error) {
	// DEFER_TASKRUN (6.1) runs completions only inside io_uring_enter,
	// on this thread, instead of interrupting it for each.
	p := uring.Params{Flags: uring.SetupCQSize | uring.SetupSubmitAll | uring.SetupCoopTaskrun | uring.SetupSingleIssuer | uring.SetupDeferTaskrun, CQEntries: 2 * entries}
	r, err := uring.Setup(entries, &p)
	if err != nil {
		return nil, err
	}
	return &ring{Ring: r}, nil
}

// push queues one SQE; the ring has room for two per connection plus the
// tick, more than can ever be outstanding.
func (r *ring) push(s uring.SQE) {
	r.Put(r.queued, s)
	r.queued++
}

// enter submits the queued SQEs and waits for at least one completion.
// What the kernel did not consume (an interrupted call, a failed
// allocation) is submitted again by the next enter.
func (r *ring) enter() error {
	r.Publish(int(r.queued))
	r.queued = 0
	unconsumed := atomic.LoadUint32(r.SQTail) - atomic.LoadUint32(r.SQHead)
	_, _, e := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.FD), uintptr(unconsumed), 1, uring.EnterGetEvents, 0, 0)
	switch e {
	case 0, unix.EINTR, unix.EAGAIN, unix.EBUSY:
		return nil
	}
	return os.NewSyscallError("io_uring_enter", e)
}

type uconn struct {
	fd                 int
	msg, buf           []byte // the kernel's while sending / receiving
	seq                uint32
	got                int  // bytes of the echo received
	sent               int  // bytes of the message sent
	sending, receiving bool // an op is in flight
	t0                 time.Time
	dead               bool
}

// waiting reports whether c's message is on its way: the next one starts
// within the completion that ends this one, so an op in flight on a live
// connection is exactly that.
func (c *uconn) waiting() bool { return !c.dead && (c.sending || c.receiving) }

// diag receives the description of each bad echo (tests silence it).
var diag io.Writer = os.Stderr

// maxUringConns keeps the ring (two entries per connection) within the
// kernel's 32768 entries.
const maxUringConns = 16000

// runUring measures for dur; an echo still missing grace after that counts
// as bad. It returns only once the kernel holds none of its buffers.
func runUring(addr string, nconns int, dur, grace time.Duration, msg0 []byte) (hists []hist, bad []int, connErrors int, err error) {
	if nconns > maxUringConns {
		return nil, nil, 0, fmt.Errorf("-engine uring takes at most %d connections (-engine go takes more)", maxUringConns)
	}
	size := len(msg0)
	var cs []*uconn
	defer func() {
		for _, c := range cs {
			unix.Close(c.fd)
		}
	}()
	for range nconns {
		fd, err := dialFD(addr)
		if err != nil {
			connErrors++
			continue
		}
		cs = append(cs, &uconn{fd: fd, msg: append([]byte(nil), msg0...), buf: make([]byte, size)})
	}
	if len(cs) == 0 {
		return nil, nil, connErrors, fmt.Errorf("no connection could be opened")
	}

	// DEFER_TASKRUN needs every enter from the thread that set the ring up.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r, err := openRing(uint32(2*len(cs) + 2))
	if err != nil {
		return nil, nil, connErrors, fmt.Errorf("%w (-engine go needs no io_uring)", err)
	}
	defer r.Close()
	hists = make([]hist, len(cs))
	bad = make([]int, len(cs))

	// A timeout SQE every 100 ms wakes the loop when no echo does, so that
	// a server that stops answering cannot hang the client past its limit.
	r.tick = uring.NsecToTimespec(int64(100 * time.Millisecond))
	ticking := false
	pushTick := func() {
		r.push(uring.SQE{Opcode: uring.OpTimeout, FD: -1, Addr: uint64(uintptr(unsafe.Pointer(&r.tick))), Len: 1, UserData: tickData})
		ticking = true
	}
	send := func(i int, c *uconn) {
		p := c.msg[c.sent:]
		c.sending = true
		r.push(uring.SQE{Opcode: uring.OpSend, FD: int32(c.fd), Addr: uint64(uintptr(unsafe.Pointer(&p[0]))), Len: uint32(len(p)), OpFlags: unix.MSG_NOSIGNAL, UserData: uint64(i)<<1 | kindSend})
	}
	recv := func(i int, c *uconn) {
		p := c.buf[c.got:]
		c.receiving = true
		r.push(uring.SQE{Opcode: uring.OpRecv, FD: int32(c.fd), Addr: uint64(uintptr(unsafe.Pointer(&p[0]))), Len: uint32(len(p)), UserData: uint64(i)<<1 | kindRecv})
	}
	start := time.Now()
	end := start.Add(dur)
	limit := end.Add(grace) // nothing outlives the run by much
	next := func(i int, c *uconn, now time.Time) {
		if !now.Before(end) {
			return
		}
		if len(c.msg) >= 8 {
			binary.LittleEndian.PutUint32(c.msg, uint32(i))
			binary.LittleEndian.PutUint32(c.msg[4:], c.seq)
		}
		c.sent, c.got, c.t0 = 0, 0, now
		send(i, c)
		recv(i, c)
	}
	// kill ends a connection's run; shutting the socket down makes the
	// kernel complete its ops in flight at once.
	kill := func(i int, c *uconn, format string, args ...any) {
		bad[i]++
		c.dead = true
		unix.Shutdown(c.fd, unix.SHUT_RDWR)
		fmt.Fprintf(diag, "echoload: conn %d message %d: "+format+"\n", append([]any{i, c.seq}, args...)...)
	}
	pushTick()
	for i, c := range cs {
		next(i, c, start)
	}
	for {
		busy, owned := 0, ticking
		for _, c := range cs {
			if c.waiting() {
				busy++
			}
			if c.sending || c.receiving {
				owned = true
			}
		}
		if busy == 0 && !owned {
			if afterRun != nil {
				afterRun(cs)
			}
			return hists, bad, connErrors, nil
		}
		if err := r.enter(); err != nil {
			// The kernel may still hold buffers: keep them from the
			// collector for good (the command exits on this error).
			abandoned = append(abandoned, cs)
			return nil, nil, connErrors, err
		}
		now := time.Now()
		r.Reap(func(cqe *uring.CQE) {
			if cqe.UserData == tickData {
				ticking = false
				if busy > 0 {
					pushTick()
				}
				return
			}
			i := int(cqe.UserData >> 1)
			c := cs[i]
			if cqe.UserData&1 == kindSend {
				c.sending = false
			} else {
				c.receiving = false
			}
			if c.dead {
				return
			}
			switch {
			case cqe.Res < 0:
				kill(i, c, "%v", unix.Errno(-cqe.Res))
				return
			case cqe.UserData&1 == kindSend:
				if c.sent += int(cqe.Res); c.sent < len(c.msg) {
					send(i, c)
				}
			case cqe.Res == 0:
				kill(i, c, "%v after %d of %d bytes", "EOF", c.got, len(c.buf))
				return
			default:
				if c.got += int(cqe.Res); c.got < len(c.buf) {
					recv(i, c)
				}
			}
			if c.sending || c.receiving {
				return // the message is not done with yet
			}
			if !bytes.Equal(c.buf, c.msg) {
				kill(i, c, "wrong echo, starting %x", c.buf[:min(len(c.buf), 16)])
				return
			}
			if now.Before(end) {
				hists[i].add(now.Sub(c.t0))
			}
			c.seq++
			next(i, c, now)
		})
		if now.After(limit) {
			for i, c := range cs {
				if c.waiting() {
					kill(i, c, "no echo within %v of the end", grace)
				}
			}
		}
	}
}

// afterRun, if set (tests), sees the connections as the run returns.
var afterRun func([]*uconn)

// abandoned keeps the buffers of a run whose ring failed reachable.
var abandoned [][]*uconn

// dialFD connects to addr with package net (timeouts, interrupted
// connects) and returns a blocking descriptor of its own for the socket.
func dialFD(addr string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return -1, err
	}
	defer c.Close()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	cerr := rc.Control(func(s uintptr) { fd, err = unix.Dup(int(s)) })
	if cerr != nil {
		return -1, cerr
	}
	if err != nil {
		return -1, err
	}
	unix.CloseOnExec(fd)
	// The description is shared with c's descriptor, closed on return;
	// package net made it non-blocking and turned Nagle off.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}
