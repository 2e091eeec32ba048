//go:build (linux || darwin || dragonfly || freebsd || netbsd || openbsd) && !netloop_stdnet

package netloop

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/netloop/netloop/bufpool"
)

// parkInRuntime makes every Read that finds its socket empty wait in the
// runtime's poller, starved or not: tests run the compat suite through
// that path with it.
var parkInRuntime atomic.Bool

// runtimePark lets a reader wait in the runtime's poller, as package net's
// readers do, while its loop is starved with more than one P
// (loop.Desc.ParkInRuntime says why). The runtime's poller needs a
// descriptor it owns, so the reader waits on a duplicate of the socket
// (same open file, same queue), made on the first such wait and closed
// again at the first Read that parks in the loop once the starvation is
// over, so that the runtime's poller does not go on reporting the
// socket's events to nobody. Costs, only while starved: dup(2) and
// epoll_ctl/kevent to register it, the same two to drop it, and a second
// descriptor per waiting connection (if the process is out of them, the
// reader parks in the loop as usual).
type runtimePark struct {
	// has is f != nil, for the per-request paths of a connection that
	// once waited here (deadline changes, parks in the loop), which then
	// need not take mu. Stored under mu, before open reads the deadline.
	has    atomic.Bool
	mu     sync.Mutex
	f      *os.File        // the duplicate, or nil
	rc     syscall.RawConn // f's
	opened time.Time       // when f was made
	closed bool            // Close began: make no duplicate again
}

// Bounds on the duplicates, for loops that pass for starved with thousands
// of connections (measured: TestSlowloris under -race, 3000 connections
// trickling bytes, saw 314 starved waits in 20 s, and a duplicate made and
// dropped at every other wait cost 121 000 of them and a p99 of 0.8 s).
const (
	// rtMax is the most duplicates open at once in the process, and
	// rtShare the share of the descriptor limit they may take at most;
	// beyond either, readers park in their loops as usual.
	rtMax   = 512
	rtShare = 8
)

// rtKeep is how long a duplicate is kept at least once made, so that a
// connection makes and drops at most one a second; settable by tests.
var rtKeep atomic.Int64

func init() { rtKeep.Store(int64(time.Second)) }

// rtClosed is the holder Close installs on a descriptor that has none,
// so that no reader makes a duplicate after Close began.
var rtClosed = &runtimePark{closed: true}

var (
	rtParks   atomic.Uint64 // waits in the runtime's poller (Stats)
	rtOpen    atomic.Int32  // duplicates open
	rtCap     atomic.Int32  // set by tests: the limit instead of rtMax and rtShare's
	rtLimitOS = sync.OnceValue(func() int32 {
		var rl syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return 0
		}
		return int32(min(rtMax, rl.Cur/rtShare))
	})
)

// rtLimit is the most duplicates open at once.
func rtLimit() int32 {
	if c := rtCap.Load(); c > 0 {
		return c
	}
	return rtLimitOS()
}

// What rtRead did.
const (
	rtNone = iota // nothing: Close began, or no descriptor is left; park in the loop
	rtWoke        // woke without reading: the deadline passed or Close began; check
	rtDone        // read: the result is read(2)'s
)

// rtRead reads into p (or, with coalesce, into a pooled buffer it takes
// only once bytes are there, so that a waiting reader holds none) as
// sysRead does, waiting in the runtime's poller for bytes, and returns the
// pooled buffer with the result. Call with the read lock and a reference
// held.
func (fd *netFD) rtRead(p []byte, coalesce bool) (b *bufpool.Buf, n int, err error, st int) {
	rt := fd.rt.Load()
	if rt == nil {
		rt = new(runtimePark)
		if !fd.rt.CompareAndSwap(nil, rt) {
			rt = fd.rt.Load()
		}
	}
	rc := rt.open(fd)
	if rc == nil {
		return nil, 0, nil, rtNone
	}
	rerr := rc.Read(func(s uintptr) bool {
		buf := p
		if coalesce {
			b = bufpool.Get()
			buf = b.B
		}
		for {
			n, err = sysRead(int(s), buf)
			if err != errINTR {
				break
			}
		}
		if err == errAGAIN {
			fd.putIf(b)
			b = nil
			fd.d.ParkingElsewhere()
			rtParks.Add(1)
			return false
		}
		return true
	})
	switch {
	case rerr == nil:
	case errors.Is(rerr, os.ErrDeadlineExceeded) || errors.Is(rerr, os.ErrClosed):
		return nil, 0, nil, rtWoke // Close closed it, or the deadline passed
	default:
		return nil, 0, nil, rtNone // cannot happen: wait in the loop
	}
	return b, n, err, rtDone
}

// open returns the duplicate's RawConn, making it if need be, or nil if
// Close began or no descriptor is left.
func (rt *runtimePark) open(fd *netFD) syscall.RawConn {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return nil
	}
	if rt.f == nil {
		// At the cap, look before adding: starved readers of every
		// connection would otherwise all bounce on the one counter.
		if rtOpen.Load() >= rtLimit() {
			return nil
		}
		if rtOpen.Add(1) > rtLimit() {
			rtOpen.Add(-1)
			return nil
		}
		s, err := sysDup(fd.d.FD())
		if err != nil {
			rtOpen.Add(-1)
			return nil
		}
		// Non-blocking already (the flag belongs to the shared open
		// file), so os.NewFile registers it with the runtime's poller.
		// If registering failed (out of epoll watches, say), the file
		// takes no deadline and its reads cannot wait: not usable.
		f := os.NewFile(uintptr(s), fd.name())
		rc, err := f.SyscallConn()
		if err == nil {
			err = f.SetReadDeadline(time.Time{})
		}
		if err != nil {
			f.Close()
			rtOpen.Add(-1)
			return nil
		}
		rt.f, rt.rc, rt.opened = f, rc, time.Now()
		rt.has.Store(true)
	}
	rt.syncDeadline(fd)
	return rt.rc
}

// syncDeadline gives the duplicate the socket's read deadline. Call with
// mu held. Deadline setters store theirs before they call it, and open
// calls it after making the duplicate, so the latest deadline reaches
// the duplicate either way.
func (rt *runtimePark) syncDeadline(fd *netFD) {
	if rt.f != nil {
		rt.f.SetReadDeadline(fd.d.ReadDeadline())
	}
}

// deadlineChanged passes a new read deadline on to the duplicate, if any.
// Small enough to inline: net/http changes deadlines three times a
// request.
func (fd *netFD) deadlineChanged() {
	if rt := fd.rt.Load(); rt != nil {
		rt.deadlineChanged(fd)
	}
}

func (rt *runtimePark) deadlineChanged(fd *netFD) {
	if !rt.has.Load() {
		return
	}
	rt.mu.Lock()
	rt.syncDeadline(fd)
	rt.mu.Unlock()
}

// drop closes the duplicate, if any, once it is rtKeep old: the reader
// parks in the loop again. closing makes it final and at once (Close): a
// reader the close wakes then finds no duplicate and parks in the loop,
// where Close wakes it.
func (rt *runtimePark) drop(closing bool) {
	if !closing && !rt.has.Load() {
		return // only the reader makes one, and it is here
	}
	rt.mu.Lock()
	f := rt.f
	if closing {
		rt.closed = true
	} else if f == nil || time.Since(rt.opened) < time.Duration(rtKeep.Load()) {
		rt.mu.Unlock()
		return
	}
	rt.f, rt.rc = nil, nil
	rt.has.Store(false)
	rt.mu.Unlock()
	if f != nil {
		f.Close() // wakes a reader waiting on it
		rtOpen.Add(-1)
	}
}

// closeRuntimePark wakes a reader waiting in the runtime's poller, and
// keeps any reader from making a duplicate from now on (Close): a reader
// then parks in the loop, where Close wakes it.
func (fd *netFD) closeRuntimePark() {
	if !fd.rt.CompareAndSwap(nil, rtClosed) {
		fd.rt.Load().drop(true)
	}
}
