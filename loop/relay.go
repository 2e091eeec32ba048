//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package loop

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// relay hands the wake-ups of a starved loop's batch on one at a time.
//
// With more than one P, a loop starved by goroutines that never block is
// woken by sysmon, which queues it on the global run queue beside the hog
// it preempted; the P takes both into its own queue, and every goroutine
// the loop then wakes lands behind the hog, except the last, which takes
// the P's next-goroutine slot. The relay uses that slot for all of them:
// the loop wakes only the first goroutine of its batch, and each goroutine
// of the loop that wakes from a park wakes the next one, which thereby
// takes the slot and runs before the hog does. Measured with two spinning
// goroutines at GOMAXPROCS=2 (bench/RESULTS.md): 1.02-1.06x the requests
// and 0.79-0.93x the p99 of the same build without the relay, in two A/Bs
// on a noisy host.
//
// Delaying a wake-up loses none: the loop advances seq before it queues a
// direction (and queues only directions parked then), so a goroutine that
// has not parked yet sees the advance when it looks again after announcing
// its park, and one that has parked stays queued until its turn. Each
// token a goroutine takes moves the relay on once (handOn, after the
// goroutine has cleared parked, so that it cannot hand the turn to itself
// if its direction was queued twice), including a token it finds when it
// stops parking without having blocked; a direction whose goroutine is no
// longer parked is skipped. Turns are still lost where a token is never
// taken (its goroutine never parks again), and every batch and every token
// from elsewhere (Close, deadlines, recvAll) may start a chain of its own:
// the relay keeps most wake-ups in one chain, not all. A timer wakes
// everything left once no turn has been handed on for relayStall, one time
// slice of the runtime's; as every timer, it fires at its P's next
// scheduling point, so a stall can last two slices. (Checking every 100 µs
// and flushing after 1 ms measured worse: a goroutine serving a peer that
// answers at once keeps its P for milliseconds without parking, and a
// flush then puts every other goroutine behind the hog again.)
type relay struct {
	queued atomic.Int32 // len(q) - head, for the empty check without mu
	mu     sync.Mutex
	q      []*dir // directions to wake, in order, from head
	head   int
	moved  int64       // mono() when a turn was last handed on, or the relay began
	timer  *time.Timer // calls check while the relay holds anything
	armed  bool        // timer is pending
}

// relayStall is how long a relay may go without handing a turn on before
// its timer wakes everything left in it.
const relayStall = 10 * time.Millisecond

// push queues dr, whose seq the caller has just advanced, if a goroutine
// is parked on it (one that is not sees the advance when it looks again).
func (r *relay) push(dr *dir) {
	if !dr.parked.Load() {
		return
	}
	r.mu.Lock()
	if r.head == len(r.q) {
		r.moved = mono()
	}
	r.q = append(r.q, dr)
	r.queued.Add(1)
	if !r.armed {
		r.armed = true
		if r.timer == nil {
			r.timer = time.AfterFunc(relayStall, r.check)
		} else {
			r.timer.Reset(relayStall)
		}
	}
	r.mu.Unlock()
}

// check is the timer's callback: it unsticks the relay, and looks again
// relayStall after the latest turn while anything is left.
func (r *relay) check() {
	r.mu.Lock()
	r.unstickLocked()
	r.armed = r.head < len(r.q)
	if r.armed {
		r.timer.Reset(max(time.Duration(r.moved+int64(relayStall)-mono()), relayStall/10))
	}
	r.mu.Unlock()
}

// handOn moves the relay on once for each token a goroutine took: token
// when it woke, and found when it stopped parking (dir.unpark). Call after
// parked is cleared.
func (r *relay) handOn(token, found bool) {
	if token {
		r.next()
	}
	if found {
		r.next()
	}
}

// stop wakes everything left and stops the timer: the loop is ending.
func (r *relay) stop() {
	r.mu.Lock()
	r.flush()
	if r.timer != nil {
		r.timer.Stop()
	}
	r.armed = true // no timer again
	r.mu.Unlock()
}

// next wakes the first parked goroutine of the relay, skipping directions
// nobody is parked on; it does nothing if the relay is empty.
func (r *relay) next() {
	if r.queued.Load() == 0 {
		return
	}
	r.mu.Lock()
	for r.head < len(r.q) {
		dr := r.q[r.head]
		r.q[r.head] = nil
		r.head++
		if dr.signal() {
			break
		}
	}
	r.reset()
	r.moved = mono()
	r.mu.Unlock()
}

// unstick wakes everything left in the relay if no turn was handed on for
// relayStall, and reports whether anything is left.
func (r *relay) unstick() bool {
	if r.queued.Load() == 0 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unstickLocked()
	return r.head < len(r.q)
}

// unstickLocked is unstick with mu held.
func (r *relay) unstickLocked() {
	if mono()-r.moved >= int64(relayStall) {
		r.flush()
	}
}

// flush wakes everything left. Call with mu held.
func (r *relay) flush() {
	for ; r.head < len(r.q); r.head++ {
		r.q[r.head].signal()
		r.q[r.head] = nil
	}
	r.reset()
}

// reset empties q once everything in it is handed on, and counts what is
// left. Call with mu held.
func (r *relay) reset() {
	if r.head == len(r.q) {
		r.q, r.head = r.q[:0], 0
	}
	r.queued.Store(int32(len(r.q) - r.head))
}

// spread is called by a goroutine that a wake-up took out of its park: while
// the loop relays (with more than one P, within starvedHold of a starved
// wait) it yields once, to the global run queue. Everything a loop wakes
// goes to the local queue of the loop's P, and a P whose spinning goroutine
// sysmon preempts finds that goroutine again on the global queue before it
// would steal from another P's: so the other P goes back to its spinner
// and the loop's P serves every connection alone. From the global queue
// both Ps take them, as they take package net's readers, which sysmon's
// poll puts there. Measured with two spinning goroutines at GOMAXPROCS=2
// (http, wrk -c50; A/Bs of 3 and 5 rounds against the build without it):
// 1.02x and 1.04x the requests, 0.90x and 0.80x the p99, every p99 of the
// 8 rounds below every one of the build without it.
func (lp *Loop) spread() {
	if late := lp.lateAt.Load(); late != 0 && lp.relaying(late) {
		lp.spreads.Add(1)
		runtime.Gosched()
	}
}
