//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package loop

import (
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/netloop/netloop/poll"
)

// Batched sends (see "Batched sends" in the package doc).
const (
	// SendMax is the largest write a batch takes: the loop copies every
	// send's bytes into the kernel itself, so a batch is kept short.
	SendMax = 16 << 10
	// collectMin is the fewest events a batch must wake for the loop to
	// collect the sends they make: a lone goroutine has nobody to share
	// its io_uring_enter with, and would only wait for the loop.
	collectMin = 2
	// collectRounds bounds the rounds of one collect, so that goroutines
	// that write on and on do not keep the loop from its poller.
	collectRounds = 4
)

// sendReq is one Write waiting in a batch.
type sendReq struct {
	op   poll.Op
	done chan struct{} // capacity 1: the batch was made, op has its result
}

var sendReqs = sync.Pool{New: func() any { return &sendReq{done: make(chan struct{}, 1)} }}

// Send makes a non-blocking send of p on d as part of the batch the loop
// is collecting, if it is collecting one and p is at most SendMax bytes,
// and reports ok. It blocks until the loop has made the batch, which it
// does as soon as the goroutines its last events woke have run (the loop
// runs behind them: it yielded the P). The result is that of a write(2)
// on a non-blocking socket: the bytes queued, or 0 and the error (EAGAIN
// when the socket buffer is full). With ok false nothing was sent and the
// caller writes itself. Call with a reference to d held, so that d's
// descriptor stays open until the batch is made.
func (d *Desc) Send(p []byte) (n int, err syscall.Errno, ok bool) {
	lp := d.lp
	if !lp.collecting.Load() || len(p) > SendMax {
		return 0, 0, false
	}
	r := sendReqs.Get().(*sendReq)
	r.op = poll.Op{FD: d.fd, P: p}
	lp.sendMu.Lock()
	if !lp.collecting.Load() { // the batch was made meanwhile
		lp.sendMu.Unlock()
		r.op.P = nil
		sendReqs.Put(r)
		return 0, 0, false
	}
	lp.pending = append(lp.pending, r)
	lp.sendMu.Unlock()
	// Goroutines of the loop park here: a long collect is a long run
	// queue, not starvation (see overran; Desc.wait stamps likewise).
	lp.activeAt.Store(int64(time.Since(lp.epoch)))
	<-r.done
	n, err, ok = r.op.N, r.op.Err, r.op.N >= 0
	r.op.P = nil
	sendReqs.Put(r)
	return n, err, ok
}

// collect makes the loop collect the sends of the goroutines its batch of
// n events woke, if it can batch sends: it yields the P so that they run
// first, then makes their sends with one io_uring_enter and wakes them.
// The writers it wakes may write again (a header, then a body), so it
// collects again, until a round collects nothing or collectRounds are
// done. It reports whether it yielded. Not while the loop is starved: it
// would queue behind the goroutine that holds the P, and the writers with
// it.
func (lp *Loop) collect(n int) bool {
	if lp.ring == nil || n < collectMin || lp.lateAt.Load() != 0 || lp.suspect.Load() {
		return false
	}
	for range collectRounds {
		lp.collecting.Store(true)
		t := time.Now()
		runtime.Gosched()
		late := time.Since(t) >= lateWake
		if late {
			// Kept off the P for 5 ms: a goroutine that does not block
			// may have run ahead of the loop, or a long run queue of
			// ones that do, or the kernel kept the process off the
			// CPU. A probe tells them apart (overran: the yield itself
			// has no CPU time to compare, which would cost a syscall
			// per round). It is armed for lateWake/2, not timerPoll:
			// a hog just preempted runs again once the goroutines
			// woken ahead of it have, and a probe that expires before
			// that fires on time (TestEveryPBusy saw no starvation
			// with timerPoll); one that expires in the first half of
			// the hog's slice fires lateWake late at its preemption.
			// Collect no more until the probe fires (suspect): while
			// starved, each round would cost every writer a time
			// slice. (The probe that drain arms after a quiet spell,
			// 100 µs, yields to this one if it is pending.)
			lp.suspect.Store(true)
			lp.probe(lateWake / 2)
		}
		if lp.flush() == 0 || lp.ring == nil || late {
			break
		}
	}
	return true
}

// flush ends collecting and makes the sends collected, in batches of at
// most the ring's size, waking each writer with its result, and returns
// how many there were. Called by the loop goroutine only. If a submission
// fails, the writers whose sends it did not make write themselves, and the
// loop stops batching for good.
func (lp *Loop) flush() int {
	lp.sendMu.Lock()
	lp.collecting.Store(false)
	pend := lp.pending
	lp.sendMu.Unlock()
	total := len(pend)
	// Nobody appends to pending once collecting is false, and only the
	// loop sets it true: pend is the loop's until the next collect.
	for len(pend) > 0 {
		k := min(len(pend), len(lp.ops))
		ops := lp.ops[:k]
		for i, r := range pend[:k] {
			ops[i] = r.op
		}
		if lp.do(ops) {
			lp.sends.Add(uint64(k))
			lp.flushes.Add(1)
		}
		for i, r := range pend[:k] {
			r.op.N, r.op.Err = ops[i].N, ops[i].Err
			ops[i].P = nil
			pend[i] = nil
			r.done <- struct{}{}
		}
		pend = pend[k:]
	}
	lp.pending = lp.pending[:0]
	return total
}

// do makes ops (at most len(lp.ops)) through the ring and reports whether
// the submission succeeded. Ops it did not make have N -1: their readers
// and writers make their own syscalls. Without a ring it makes none; after
// a failed submission the loop stops batching (the ops the kernel took keep
// their results). Loop goroutine only.
func (lp *Loop) do(ops []poll.Op) bool {
	if lp.ring == nil {
		for i := range ops {
			ops[i].N = -1
		}
		return false
	}
	if err := lp.ring.Do(ops); err != nil {
		lp.stopBatching()
		return false
	}
	return true
}

// stopBatching closes the ring after a failed submission: from now on
// every read and write is its caller's own syscall. Loop goroutine only.
func (lp *Loop) stopBatching() {
	lp.batching.Store(false)
	lp.ring.Close()
	lp.ring = nil
}

// openRing opens the ring a loop batches sends with, unless batching is
// switched off (NETLOOP_BATCH=0).
func openRing() (*poll.Ring, error) {
	if os.Getenv("NETLOOP_BATCH") == "0" {
		return nil, syscall.ENOTSUP
	}
	return poll.OpenRing(batchSize)
}
