package main

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestBucketRoundTrip(t *testing.T) {
	for _, ns := range []uint64{0, 1, 63, 64, 65, 100, 127, 128, 1000, 123456, 1e9, 1 << 62} {
		i := bucket(ns)
		lo := lowerBound(i)
		if lo > float64(ns) || float64(ns) >= lo*(1+1.0/(1<<sub))+1 {
			t.Errorf("ns=%d: bucket %d lower bound %v", ns, i, lo)
		}
		if bucket(uint64(lo)) != i {
			t.Errorf("ns=%d: bucket(lowerBound(%d)) = %d", ns, i, bucket(uint64(lo)))
		}
	}
}

func TestQuantile(t *testing.T) {
	var h hist
	for range 100000 {
		h.add(time.Duration(rand.IntN(1000000))) // uniform 0..1 ms
	}
	for _, q := range []float64{0.5, 0.99} {
		got, want := h.quantile(q), q*1000
		if got < want*0.95 || got > want*1.02 {
			t.Errorf("q%.2f = %.1f us, want ~%.1f", q, got, want)
		}
	}
}
