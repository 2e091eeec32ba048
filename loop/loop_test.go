//go:build linux

package loop

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

// TestProbeStopsWithLoop: a wake-up after a quiet spell arms the starvation
// probe's timer; when the last descriptor goes and the loop stops, that
// timer is stopped too (invariant 7: nothing of the loop outlives it).
func TestProbeStopsWithLoop(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // the probe runs only with one P
	a, b := socketpair(t)
	defer syscall.Close(b)
	d, err := Register(a, 1)
	if err != nil {
		t.Fatal(err)
	}
	lp := d.lp
	time.Sleep(3 * lateWake) // a quiet spell
	seq := d.ReadSeq()
	syscall.Write(b, []byte("x"))
	for deadline := time.Now().Add(5 * time.Second); d.ReadSeq() == seq; {
		if time.Now().After(deadline) {
			t.Fatal("the loop did not dispatch the event")
		}
		runtime.Gosched()
	}
	if err := d.Close(syscall.Close); err != nil { // the last user: the loop stops
		t.Fatal(err)
	}
	select {
	case <-lp.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the loop did not stop")
	}
	if lp.probeT == nil {
		t.Fatal("no probe was armed after the quiet spell")
	}
	if lp.probeT.Stop() {
		t.Error("the probe's timer was still pending after the loop stopped")
	}
}
