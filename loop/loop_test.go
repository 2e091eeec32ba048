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
	dispatchOne(t, d, b)
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

// TestCountersOutliveLoops: the group stops with its last descriptor and a
// new one starts with the next; the process-wide counters carry on across
// that and never go back (they are read as monotonic counters, e.g. by
// expvar scrapers computing rates).
func TestCountersOutliveLoops(t *testing.T) {
	event := func() *Desc {
		a, b := socketpair(t)
		defer syscall.Close(b)
		d, err := Register(a, 2)
		if err != nil {
			t.Fatal(err)
		}
		dispatchOne(t, d, b)
		return d
	}
	d := event()
	first := ReadStats()
	if first.Events == 0 || first.Batches == 0 {
		t.Fatalf("no events counted: %+v", first)
	}
	if err := d.Close(syscall.Close); err != nil {
		t.Fatal(err)
	}
	stopped := ReadStats()
	if stopped.Users == 0 && stopped.Loops != 0 {
		t.Errorf("the group did not stop with its last descriptor: %+v", stopped)
	}
	if stopped.Events < first.Events || stopped.Batches < first.Batches {
		t.Errorf("counters went back when the loops stopped: %+v then %+v", first, stopped)
	}
	d = event()
	defer d.Close(syscall.Close)
	again := ReadStats()
	if again.Events <= stopped.Events || again.Batches <= stopped.Batches {
		t.Errorf("counters did not carry on in the new group: %+v then %+v", stopped, again)
	}
}

// dispatchOne writes a byte into the peer b of d's socket and waits until d's
// loop has dispatched the readiness it causes.
func dispatchOne(t *testing.T, d *Desc, b int) {
	t.Helper()
	seq := d.ReadSeq()
	syscall.Write(b, []byte("x"))
	for deadline := time.Now().Add(5 * time.Second); d.ReadSeq() == seq; {
		if time.Now().After(deadline) {
			t.Fatal("the loop did not dispatch the event")
		}
		runtime.Gosched()
	}
}
