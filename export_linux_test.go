//go:build linux && !netloop_stdnet

package netloop

import (
	"os"
	"syscall"

	"github.com/netloop/netloop/poll"
)

// FailSplice makes the call'th splice from the source of every copy (0 is
// the first) fail with EINVAL, as a kernel that cannot splice from that
// socket would, until the returned func restores it. Not for parallel tests.
func FailSplice(call int) (restore func()) {
	testHookDrain = func(drain drainFunc) drainFunc {
		calls := 0
		return func(pw, max int) (int, error) {
			calls++
			if calls-1 == call {
				return 0, os.NewSyscallError("splice", syscall.EINVAL)
			}
			return drain(pw, max)
		}
	}
	return func() { testHookDrain = nil }
}

// BatchedWritesAvailable reports whether this kernel lets the loops batch
// writes (an io_uring that completes MSG_DONTWAIT sends at submission).
func BatchedWritesAvailable() error {
	r, err := poll.OpenRing(8)
	if err == nil {
		r.Close()
	}
	return err
}
