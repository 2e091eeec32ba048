//go:build linux && !netloop_stdnet

package netloop_test

import (
	"errors"
	"fmt"
	"io"
	"math/rand"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netloop/netloop"
)

// TestSpliceEINVAL: a kernel that cannot splice from a socket fails the
// first splice with EINVAL and consumes nothing; the copy then goes through
// user space, invisibly: netloop's transcript (bytes, counts, errors) with
// every copy's first splice failing is package net's with splice working.
// EINVAL after bytes were spliced is an error of the copy, as in package net.
func TestSpliceEINVAL(t *testing.T) {
	defer watchdog(t, 60*time.Second, "splice EINVAL")()
	data := make([]byte, 3<<20+101)
	rand.New(rand.NewSource(8)).Read(data)
	copies := func(t *testing.T, im impl) string {
		lnA, lnB := listen(t, im, "tcp4"), listen(t, im, "tcp4")
		var out []string
		rec := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
		copyAfterSmallRead(t, lnA, lnB, data, rec)
		copyIntoNet(t, lnA, lnB, data, rec)
		return strings.Join(out, "\n")
	}
	want := copies(t, impls[0])
	before := netloop.SplicedBytes()
	restore := netloop.FailSplice(0)
	got := copies(t, impls[1])
	restore()
	if got != want {
		t.Errorf("netloop falling back from splice:\n%s\npackage net:\n%s", got, want)
	}
	if n := netloop.SplicedBytes() - before; n != 0 {
		t.Errorf("%d bytes counted as spliced while every splice failed", n)
	}

	// EINVAL once bytes went through the pipe: the copy fails with it,
	// and what it reports written is what the sink's peer received.
	restore = netloop.FailSplice(1)
	defer restore()
	ln := listen(t, impls[1], "tcp4")
	dst, dstPeer := pipe(t, ln)
	received := make(chan int64, 1)
	go func() { n, _ := io.Copy(io.Discard, dstPeer); received <- n }()
	src, srcPeer := pipe(t, ln)
	feed(srcPeer, data)
	n, err := io.Copy(dst, src)
	if !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("copy after a failed second splice: %d, %v; want EINVAL", n, err)
	}
	if !strings.Contains(err.Error(), "readfrom") || !strings.Contains(err.Error(), "splice") {
		t.Errorf("error %q does not name the operation and the syscall", err)
	}
	dst.Close()
	if r := <-received; r != n || n == 0 {
		t.Errorf("copy reported %d bytes written, the peer received %d", n, r)
	}
}
