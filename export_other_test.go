//go:build !((linux || darwin || dragonfly || freebsd || netbsd || openbsd) && !netloop_stdnet)

package netloop

// LoopsRunning: the package-net backend runs no loops.
func LoopsRunning() (loops, users int) { return 0, 0 }

// BuffersInUse: the package-net backend pools no buffers.
func BuffersInUse() int64 { return 0 }

// SplicedBytes: the package-net backend splices inside package net.
func SplicedBytes() uint64 { return 0 }
