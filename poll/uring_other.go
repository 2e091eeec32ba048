//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package poll

import (
	"os"
	"syscall"
)

// Ring is io_uring's batched sends and receives (uring_linux.go); other systems have no
// such ring and OpenRing always fails, so the loop writes one call at a
// time.
type Ring struct{}

// OpenRing reports that batched sends are unavailable.
func OpenRing(uint32) (*Ring, error) {
	return nil, os.NewSyscallError("io_uring_setup", syscall.ENOSYS)
}

// FD is never called: OpenRing returns no Ring.
func (*Ring) FD() int { return -1 }

// Entries is never called: OpenRing returns no Ring.
func (*Ring) Entries() int { return 0 }

// Close is never called: OpenRing returns no Ring.
func (*Ring) Close() error { return nil }

// Op is uring_linux.go's.
type Op struct {
	FD   int
	P    []byte
	Recv bool
	N    int
	Err  syscall.Errno
}

// Do is never called: OpenRing returns no Ring.
func (*Ring) Do([]Op) error { return syscall.ENOSYS }
