package netloop_test

import (
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netloop/netloop"
)

// TestEveryPBusy: with a goroutine that never blocks holding the only P,
// connections on netloop must make at least as much progress as on package
// net. The runtime then consults its poller only from sysmon, which queues
// a woken netloop loop beside the preempted hog; a loop that woke its
// connections from there would have them wait behind the hog for a whole
// time slice (this measured 0.6x package net's round trips before the loop
// learnt to detect starvation and wait on a timer instead).
func TestEveryPBusy(t *testing.T) {
	if testing.Short() {
		t.Skip("timed: runs 2.4 s with GOMAXPROCS=1")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var stop atomic.Bool
	var spun sync.WaitGroup
	spun.Add(1)
	go func() { // the hog: pure computation, preempted only by the runtime
		defer spun.Done()
		x := uint64(1)
		for !stop.Load() {
			for range 1 << 16 {
				x = x*6364136223846793005 + 1442695040888963407
			}
		}
		_ = x
	}()
	defer func() { stop.Store(true); spun.Wait() }()

	const conns, window = 20, 600 * time.Millisecond
	roundTrips := func(im impl) int64 {
		ln := listen(t, im, "tcp4")
		defer ln.Close()
		var served sync.WaitGroup
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				served.Add(1)
				go func() {
					defer served.Done()
					defer c.Close()
					io.Copy(c, c)
				}()
			}
		}()
		var total atomic.Int64
		var clients sync.WaitGroup
		end := time.Now().Add(window)
		for range conns {
			c := dial(t, ln)
			c.SetDeadline(end.Add(5 * time.Second))
			clients.Add(1)
			go func(c net.Conn) {
				defer clients.Done()
				defer c.Close()
				b := []byte{'x'}
				for time.Now().Before(end) {
					if _, err := c.Write(b); err != nil {
						t.Error(err)
						return
					}
					if _, err := io.ReadFull(c, b); err != nil {
						t.Error(err)
						return
					}
					total.Add(1)
				}
			}(c)
		}
		clients.Wait()
		if im.name == "netloop" && netloop.Native() { // loops still run: ln is open
			var late uint64
			for _, l := range netloop.ReadStats().PerLoop {
				late += l.Starved
			}
			if late == 0 {
				t.Error("no loop noticed that it was starved (Stats.PerLoop[].Starved)")
			}
		}
		ln.Close()
		served.Wait()
		return total.Load()
	}

	counts := map[string]int64{}
	for _, round := range [][]impl{impls, {impls[1], impls[0]}} {
		for _, im := range round {
			n := roundTrips(im)
			counts[im.name] += n
			t.Logf("%s: %d round trips in %v", im.name, n, window)
		}
	}
	if counts["net"] == 0 {
		t.Fatal("package net made no progress at all")
	}
	ratio := float64(counts["netloop"]) / float64(counts["net"])
	t.Logf("netloop/net round trips with every P busy: %.2f", ratio)
	if ratio < 0.9 {
		t.Errorf("netloop made %.2fx package net's progress with every P busy; want at least 0.9x", ratio)
	}
}
