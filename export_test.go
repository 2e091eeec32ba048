//go:build (linux || darwin || dragonfly || freebsd || netbsd || openbsd) && !netloop_stdnet

package netloop

import (
	"time"

	"github.com/netloop/netloop/bufpool"
	"github.com/netloop/netloop/loop"
)

// LoopsRunning reports how many event loops are running and how many
// descriptors are registered with them, for the leak tests.
func LoopsRunning() (loops, users int) {
	s := loop.ReadStats()
	return s.Loops, s.Users
}

// BuffersInUse reports pooled buffers handed out and not returned.
func BuffersInUse() int64 { return bufpool.InUse() }

// SplicedBytes reports bytes moved by splice(2) into netloop sockets.
func SplicedBytes() uint64 { return splicedBytesCount() }

// SetParkInRuntime makes every Read that finds its socket empty wait in
// the runtime's poller (as while starved with more than one P), or undoes
// that.
func SetParkInRuntime(on bool) { parkInRuntime.Store(on) }

// SetRuntimeParkKeep sets how long a duplicate is kept at least, and
// returns the previous setting.
func SetRuntimeParkKeep(d time.Duration) time.Duration {
	return time.Duration(rtKeep.Swap(int64(d)))
}

// RuntimeParkOpen reports whether c's reader has a duplicate of the
// socket open for waiting in the runtime's poller.
func RuntimeParkOpen(c any) bool {
	nc, ok := c.(*Conn)
	if !ok {
		return false
	}
	rt := nc.fd.rt.Load()
	if rt == nil {
		return false
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.f != nil
}

// SetRuntimeParkCap sets the most duplicates open at once (0: the
// default), and returns the previous setting.
func SetRuntimeParkCap(n int) int { return int(rtCap.Swap(int32(n))) }
