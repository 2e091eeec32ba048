//go:build race && !netloop_stdnet

package netloop

import (
	"runtime"
	"unsafe"
)

// The race detector's view of socket I/O, as x/sys/unix and package syscall
// give it: a read's bytes are written by it, a write's are read, and every
// successful read happens after every write that preceded it (ioSync), so
// that data handed from one goroutine to another through a socket is not
// reported as a race.
const raceEnabled = true

var ioSync int64

func raceAcquire(addr unsafe.Pointer)           { runtime.RaceAcquire(addr) }
func raceReleaseMerge(addr unsafe.Pointer)      { runtime.RaceReleaseMerge(addr) }
func raceReadRange(addr unsafe.Pointer, n int)  { runtime.RaceReadRange(addr, n) }
func raceWriteRange(addr unsafe.Pointer, n int) { runtime.RaceWriteRange(addr, n) }
