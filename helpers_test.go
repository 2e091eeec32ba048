package netloop_test

import (
	"context"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/netloop/netloop"
)

func netloopListenConfig(keepAlive time.Duration, ka net.KeepAliveConfig) *netloop.ListenConfig {
	return &netloop.ListenConfig{KeepAlive: keepAlive, KeepAliveConfig: ka}
}

func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }

// runChild runs test (a test function of this binary that skips unless its
// environment says it is a child) in a child process with env added, kills
// it after timeout, and returns its combined -test.v output.
func runChild(t *testing.T, test string, timeout time.Duration, env ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+test+"$", "-test.v")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
