//go:build !race && !netloop_stdnet

package netloop

import "unsafe"

// Without the race detector its annotations compile away (race_linux.go).
const raceEnabled = false

var ioSync int64

func raceAcquire(unsafe.Pointer)         {}
func raceReleaseMerge(unsafe.Pointer)    {}
func raceReadRange(unsafe.Pointer, int)  {}
func raceWriteRange(unsafe.Pointer, int) {}
