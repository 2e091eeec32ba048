// Command echoload is bench/load.sh's TCP ping-pong load generator: -c
// connections (all opened before the clock starts) each write a -size byte
// message, read it back whole, check it, and repeat until -d has passed.
// Each message starts with its connection's index and its own sequence
// number (when -size leaves room for them), so that an echo that carries
// another connection's bytes, or an earlier message's, counts as bad.
// It prints one line of key=value pairs:
//
//	msgs=N msgs_per_s=F p50_us=F p99_us=F conns=N conn_errors=N bad_echo=N
//
// Only round trips completed inside the window are counted. Latencies go to a
// log-linear histogram (32 buckets per power of two, ~3 % wide; the lower
// bound of the bucket is reported).
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"math/bits"
	"net"
	"os"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "echo server address (loopback only)")
	conns := flag.Int("c", 50, "connections")
	size := flag.Int("size", 512, "message size in bytes")
	dur := flag.Duration("d", 10*time.Second, "measured duration (at most 10m)")
	engine := flag.String("engine", "go", "go: a goroutine per connection on package net; uring (Linux): one thread driving every connection through io_uring, a cheaper client")
	flag.Parse()
	*dur = min(*dur, 10*time.Minute)
	host, _, err := net.SplitHostPort(*addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fail("-addr must be a loopback IP:port")
	}
	if *conns < 1 || *size < 1 {
		fail("-c and -size must be positive")
	}
	msg := bytes.Repeat([]byte("0123456789abcdef"), *size/16+1)[:*size]
	var hists []hist
	var bad []int
	var connErrors int
	switch *engine {
	case "go":
		hists, bad, connErrors = runGo(*addr, *conns, *dur, msg)
	case "uring":
		hists, bad, connErrors, err = runUring(*addr, *conns, *dur, 5*time.Second, msg)
		if err != nil {
			fail(err.Error())
		}
	default:
		fail("-engine must be go or uring")
	}

	var total hist
	badTotal := 0
	for i := range hists {
		total.merge(&hists[i])
		badTotal += bad[i]
	}
	fmt.Printf("msgs=%d msgs_per_s=%.0f p50_us=%.1f p99_us=%.1f conns=%d conn_errors=%d bad_echo=%d\n",
		total.n, float64(total.n)/dur.Seconds(), total.quantile(0.50), total.quantile(0.99),
		len(hists), connErrors, badTotal)
}

// runGo is the goroutine engine: one goroutine per connection, each
// writing its message and reading the echo back with package net.
func runGo(addr string, conns int, dur time.Duration, msg []byte) (hists []hist, bad []int, connErrors int) {
	cs := make([]net.Conn, 0, conns)
	for range conns {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			connErrors++
			continue
		}
		cs = append(cs, c)
	}
	if len(cs) == 0 {
		fail("no connection could be opened")
	}

	start := time.Now()
	end := start.Add(dur)
	hists = make([]hist, len(cs))
	bad = make([]int, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			c.SetDeadline(end.Add(5 * time.Second)) // nothing outlives the run by much
			msg := append([]byte(nil), msg...)
			buf := make([]byte, len(msg))
			for seq := uint32(0); ; seq++ {
				if len(msg) >= 8 {
					binary.LittleEndian.PutUint32(msg, uint32(i))
					binary.LittleEndian.PutUint32(msg[4:], seq)
				}
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				if _, err := c.Write(msg); err != nil {
					bad[i]++
					fmt.Fprintf(os.Stderr, "echoload: conn %d message %d: %v\n", i, seq, err)
					return
				}
				if n, err := io.ReadFull(c, buf); err != nil {
					bad[i]++
					fmt.Fprintf(os.Stderr, "echoload: conn %d message %d: %v after %d of %d bytes\n", i, seq, err, n, len(buf))
					return
				}
				t1 := time.Now()
				if !bytes.Equal(buf, msg) {
					bad[i]++
					fmt.Fprintf(os.Stderr, "echoload: conn %d message %d: wrong echo, starting %x\n", i, seq, buf[:min(len(buf), 16)])
					return
				}
				if t1.Before(end) {
					hists[i].add(t1.Sub(t0))
				}
			}
		}()
	}
	wg.Wait()
	return hists, bad, connErrors
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "echoload:", msg)
	os.Exit(1)
}

const sub = 5 // 1<<sub buckets per power of two

// hist counts durations in nanoseconds: values below 2<<sub exactly, above
// that by their top sub+1 bits.
type hist struct {
	n      uint64
	counts [(64 + 2) << sub]uint64
}

func bucket(ns uint64) int {
	if ns < 2<<sub {
		return int(ns)
	}
	e := bits.Len64(ns) - (sub + 1) // ns>>e is in [1<<sub, 2<<sub)
	return (e+1)<<sub + int(ns>>uint(e)) - 1<<sub
}

func lowerBound(i int) float64 { // inverse of bucket, in ns
	if i < 2<<sub {
		return float64(i)
	}
	e := i>>sub - 1
	return float64(uint64(i&(1<<sub-1)+1<<sub) << uint(e))
}

func (h *hist) add(d time.Duration) {
	h.n++
	h.counts[bucket(uint64(max(d, 0)))]++
}

func (h *hist) merge(o *hist) {
	h.n += o.n
	for i, c := range o.counts {
		h.counts[i] += c
	}
}

func (h *hist) quantile(q float64) float64 { // microseconds
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n-1)) + 1
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return lowerBound(i) / 1e3
		}
	}
	return 0
}
