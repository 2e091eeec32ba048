//go:build (linux || darwin || dragonfly || freebsd || netbsd || openbsd) && !netloop_stdnet

package netloop

import (
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
