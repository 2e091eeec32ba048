//go:build linux && !netloop_stdnet

package netloop

import (
	"os"
	"syscall"
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
