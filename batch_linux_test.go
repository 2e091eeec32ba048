//go:build !netloop_stdnet

package netloop_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netloop/netloop"
)

// TestBatchedWrites: with GOMAXPROCS=1 and many connections busy at once,
// the loop makes the reads of the readers one batch of events wakes, and
// the writes they then make, with one io_uring_enter each (loop/recv.go,
// loop/send.go), every connection gets exactly its own requests and
// replies, and NETLOOP_BATCH=0 turns batching off. Each case runs
// in a child process, which starts its loops with the setting.
func TestBatchedWrites(t *testing.T) {
	if err := netloop.BatchedWritesAvailable(); err != nil {
		t.Skipf("no batched writes on this kernel: %v", err)
	}
	for _, tc := range []struct{ name, env string }{{"on", "NETLOOP_BATCH="}, {"off", "NETLOOP_BATCH=0"}} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runChild(t, "TestBatchedWritesChild", time.Minute, "NETLOOP_BATCH_CHILD="+tc.name, "GOMAXPROCS=1", tc.env)
			if err != nil || !strings.Contains(out, "--- PASS: TestBatchedWritesChild") {
				t.Fatalf("child: %v\n%s", err, out)
			}
			t.Log(strings.TrimSpace(out))
		})
	}
}

// TestBatchedWritesChild is the child process of TestBatchedWrites.
func TestBatchedWritesChild(t *testing.T) {
	mode := os.Getenv("NETLOOP_BATCH_CHILD")
	if mode == "" {
		t.Skip("runs as the child of TestBatchedWrites")
	}
	const (
		conns  = 24
		rounds = 300
		reply  = 300 // bytes per reply, written in two Writes
	)
	ln, err := netloop.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	defer serveEach(ln, func(c net.Conn) {
		c.SetDeadline(deadline)
		req := make([]byte, 16)
		for {
			if _, err := io.ReadFull(c, req); err != nil {
				return
			}
			p := replyTo(req, reply)
			if _, err := c.Write(p[:100]); err != nil {
				t.Errorf("server write: %v", err)
				return
			}
			if _, err := c.Write(p[100:]); err != nil {
				t.Errorf("server write: %v", err)
				return
			}
		}
	})()
	before := netloop.ReadStats()
	var cw sync.WaitGroup
	for id := range conns {
		cw.Add(1)
		go func() {
			defer cw.Done()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			c.SetDeadline(deadline)
			req, got := make([]byte, 16), make([]byte, reply)
			for seq := range rounds {
				binary.LittleEndian.PutUint64(req, uint64(id))
				binary.LittleEndian.PutUint64(req[8:], uint64(seq))
				if _, err := c.Write(req); err != nil {
					t.Error(err)
					return
				}
				if _, err := io.ReadFull(c, got); err != nil {
					t.Error(err)
					return
				}
				if want := replyTo(req, reply); !bytes.Equal(got, want) {
					t.Errorf("conn %d round %d: got another reply", id, seq)
					return
				}
			}
		}()
	}
	cw.Wait()
	s := netloop.ReadStats()
	writes, batches := s.BatchedWrites-before.BatchedWrites, s.WriteBatches-before.WriteBatches
	reads := s.BatchedReads - before.BatchedReads
	t.Logf("%d writes in batches, by %d io_uring_enter calls; %d reads made by the loop; %d loop wake-ups for %d events", writes, batches, reads, s.LoopWakeups-before.LoopWakeups, s.LoopEvents-before.LoopEvents)
	switch {
	case mode == "off" && (writes != 0 || reads != 0):
		t.Errorf("NETLOOP_BATCH=0, yet %d writes and %d reads were batched", writes, reads)
	case mode == "on" && reads < conns*rounds/2:
		// Every request but a connection's first arrives while its
		// reader is parked: the loop should have read nearly all.
		t.Errorf("the loop read %d of %d requests: want over half", reads, conns*rounds)
	case mode == "on" && (writes < conns*rounds || batches*2 > writes):
		// Two Writes per request: a loop that batched only the first
		// (the one its batch of events woke) would batch half of them.
		t.Errorf("%d of %d writes batched, in %d batches: want over half, two or more a batch on average", writes, 2*conns*rounds, batches)
	}
}

// replyTo is the reply to req: n bytes that name req's connection and round.
func replyTo(req []byte, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = req[i%16] ^ byte(i)
	}
	return p
}
