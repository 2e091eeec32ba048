// Command hiccup is bench/load.sh's host check: -threads OS threads spin for
// -d, each adding up the gaps (over 1 ms) in which it did not run. On a
// dedicated idle machine the loss is near 0 %; on a shared VM whose host takes
// CPUs away, or with other processes busy, it is not. It prints one line:
//
//	hiccup threads=N d=2s lost_pct=A,B max_gap_ms=X,Y
package main

import (
	"flag"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"
)

func main() {
	threads := flag.Int("threads", 2, "spinning threads (one per CPU to check)")
	d := flag.Duration("d", 2*time.Second, "duration (at most 1m)")
	flag.Parse()
	*d = min(*d, time.Minute)
	*threads = max(*threads, 1)
	runtime.GOMAXPROCS(*threads + 1)

	lost := make([]time.Duration, *threads)
	maxGap := make([]time.Duration, *threads)
	var wg sync.WaitGroup
	for i := range *threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			start := time.Now()
			last := start
			for last.Sub(start) < *d {
				now := time.Now()
				if g := now.Sub(last); g > time.Millisecond {
					lost[i] += g
					maxGap[i] = max(maxGap[i], g)
				}
				last = now
			}
		}()
	}
	wg.Wait()
	var pct, gaps []string
	for i := range lost {
		pct = append(pct, fmt.Sprintf("%.1f", 100*lost[i].Seconds()/d.Seconds()))
		gaps = append(gaps, fmt.Sprintf("%.1f", maxGap[i].Seconds()*1e3))
	}
	fmt.Printf("hiccup threads=%d d=%s lost_pct=%s max_gap_ms=%s\n",
		*threads, *d, strings.Join(pct, ","), strings.Join(gaps, ","))
}
