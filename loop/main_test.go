//go:build linux

package loop

import (
	"os"
	"testing"
)

// TestMain turns batching on unless the environment says otherwise: the
// tests that start loops then exercise the batched reads and writes also
// where they do not pay (batchPays), and CI runs them again with
// NETLOOP_BATCH=0 for the unbatched paths.
func TestMain(m *testing.M) {
	if _, ok := os.LookupEnv("NETLOOP_BATCH"); !ok {
		os.Setenv("NETLOOP_BATCH", "1")
	}
	os.Exit(m.Run())
}
