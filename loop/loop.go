//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package loop

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/netloop/netloop/poll"
)

// Loop is one event loop: a poller and the goroutine that drains it.
type Loop struct {
	poller *poll.Poller
	file   *os.File      // wraps poller.FD(); closing it stops the loop
	done   chan struct{} // closed when the loop goroutine has returned

	// Counters, accessed atomically.
	events  atomic.Uint64 // events dispatched
	batches atomic.Uint64 // times the loop woke with events
	late    atomic.Uint64 // waits that overran by lateWake (starvation)

	epoch     time.Time    // lateAt and probeDue count from here (monotonic)
	lateAt    atomic.Int64 // when the last wait overran; 0: never
	multiP    atomic.Bool  // GOMAXPROCS was above 1 then
	probeDue  atomic.Int64 // when the pending probe is due
	probeCPU  atomic.Int64 // processCPU by when it is due, at most; noCPU: none needed (see cpuMark)
	probeLate atomic.Int64 // how late the last probe fired (tests)
	probing   atomic.Bool  // a probe is pending
	suspect   atomic.Bool  // a yield came back late: no collecting until its probe fires
	probeT    *time.Timer  // the probe's timer, made by start, reset by probe

	polledAt atomic.Int64  // when the poller was last waited on, from epoch
	activeAt atomic.Int64  // when a goroutine last parked on one of ours (sampled)
	batchID  atomic.Uint32 // the latest batch dispatched (by the loop or an assist); never 0
	left     atomic.Int64  // goroutines that batch woke that have not run yet
	helper   *poll.Poller  // the poller shared, for assist
	helping  atomic.Bool   // an assist is polling: owns helper and helpEvs
	helpEvs  []poll.Event  // assist's batch
	assists  atomic.Uint64 // polls done by assists
	relay    relay         // a starved loop's wake-ups, with more than one P
	spreads  atomic.Uint64 // yields of goroutines it woke to the global queue (spread)

	// Batched sends and reads (send.go, recv.go); ring is nil where
	// io_uring is unavailable, and batching is whether it is not nil.
	ring       *poll.Ring
	batching   atomic.Bool
	ops        []poll.Op     // a batch; the loop's own
	claims     []*readOffer  // read offers claimed in a batch; the loop's own
	recvs      atomic.Uint64 // reads made in batches
	collecting atomic.Bool   // the loop yielded and collects sends
	sendMu     sync.Mutex    // guards pending
	pending    []*sendReq
	sends      atomic.Uint64 // sends made in batches
	flushes    atomic.Uint64 // io_uring_enter calls that made them
}

// group is the process-wide set of loops.
type group struct {
	loops []*Loop       // guarded by mu; only ever appended to
	next  atomic.Uint32 // round-robin cursor
}

var (
	mu    sync.Mutex // guards cur, users and retired
	cur   *group     // nil while stopped
	users int        // registered descriptors not yet destroyed
	// retired holds the counters of the loops of stopped groups.
	retired LoopStats

	fds  table         // descriptor number -> *Desc, shared by all loops
	gens atomic.Uint32 // generation counter for Register
)

// DefaultLoops is the number of loops used when a listener asks for none:
// one per GOMAXPROCS at the time the group grows.
func DefaultLoops() int { return runtime.GOMAXPROCS(0) }

// ShortReadProvesEmpty reports whether the poller reports everything that
// can stop a TCP read short with data still queued (hang-up, urgent data),
// so that a short read without such a report proves the socket empty.
const ShortReadProvesEmpty = poll.ShortReadProvesEmpty

// batchSize is how many events one non-blocking wait fetches.
const batchSize = 128

// Register adds fd to one of the first n loops of the group (starting the
// group, or growing it to n loops, if needed) and returns its Desc. n <= 0
// means DefaultLoops. On error nothing is registered and fd is untouched.
func Register(fd int, n int) (*Desc, error) {
	if n <= 0 {
		n = DefaultLoops()
	}
	mu.Lock()
	g := cur
	if g == nil {
		g = &group{}
	}
	for len(g.loops) < n {
		lp, err := start()
		if err != nil {
			if len(g.loops) == 0 {
				mu.Unlock()
				return nil, err
			}
			n = len(g.loops) // use what we have
			break
		}
		g.loops = append(g.loops, lp)
	}
	cur = g
	users++
	lp := g.loops[int(g.next.Add(1))%n]
	mu.Unlock()

	d := newDesc(fd, gens.Add(1), lp)
	fds.put(d)
	if err := lp.poller.Add(fd, d.gen); err != nil {
		fds.remove(d)
		release()
		return nil, err
	}
	// A registration is progress, as a park is (overran): a burst of
	// accepts fills the run queue with the new connections' goroutines,
	// which have not parked yet, and made the loop's waits late enough to
	// pass for starvation (measured: 2-9 false alarms in each
	// 1000-connection wrk run, each turning off batching for 20 ms and
	// starting 200 ms of assists; see also the first-park stamp in wait).
	lp.activeAt.Store(int64(time.Since(lp.epoch)))
	return d, nil
}

// release drops one user of the group and stops it when none is left.
func release() {
	mu.Lock()
	defer mu.Unlock()
	users--
	if users > 0 || cur == nil {
		return
	}
	g := cur
	cur = nil
	for _, lp := range g.loops {
		lp.file.Close() // wakes the parked loop goroutine, which returns
		<-lp.done
		if lp.ring != nil { // nil also once a failed submission closed it
			lp.ring.Close()
		}
		retired.add(lp.stats())
	}
}

func start() (*Loop, error) {
	p, err := poll.Open()
	if err != nil {
		return nil, err
	}
	lp := &Loop{
		epoch:   time.Now(),
		poller:  p,
		helper:  p.Share(),
		helpEvs: make([]poll.Event, batchSize),
		file:    os.NewFile(uintptr(p.FD()), "netloop-poller"),
		done:    make(chan struct{}),
	}
	if r, err := openRing(); err == nil {
		lp.ring, lp.ops = r, make([]poll.Op, r.Entries())
		lp.batching.Store(true)
	}
	lp.probeT = time.AfterFunc(time.Hour, lp.probed)
	lp.probeT.Stop()
	rc, err := lp.file.SyscallConn()
	if err != nil {
		lp.file.Close()
		if lp.ring != nil {
			lp.ring.Close()
		}
		return nil, err
	}
	go lp.run(rc)
	return lp, nil
}

// Starvation handling (see "When every P is busy" in the package doc).
const (
	// lateWake: a timer wait that overruns by this much means a goroutine
	// held the P without reaching a scheduling point (it did not block);
	// a wake-up from the runtime's poller this long after the loop parked
	// (idle, or kept off the CPU: it cannot tell) makes it arm one probe
	// timer, while it stays in the poller.
	lateWake = 5 * time.Millisecond
	// timerPoll is the probe timer, and the timer a starved loop polls on.
	timerPoll = 100 * time.Microsecond
	// starvedHold is how long the loop keeps waiting on timers after its
	// last late timer wait.
	starvedHold = 20 * time.Millisecond
)

// run drains the poller whenever the runtime reports it readable, until the
// file is closed.
//
// While goroutines that do not block hold the P, the loop waits on a timer
// instead of the runtime's poller. The runtime then consults its poller
// only from sysmon, which puts the woken loop on the global run queue
// beside the goroutine it preempted; the P takes both, and every goroutine
// the loop wakes queues behind the hog for a whole time slice. A timer
// instead makes the loop the P's next goroutine at the hog's preemption,
// ahead of it. The timer's lateness is the test: timers fire at the next
// scheduling point, so a long run queue of goroutines that do block leaves
// them on time, and only a goroutine that runs on makes them late.
func (lp *Loop) run(rc syscall.RawConn) {
	defer close(lp.done)
	defer lp.probeT.Stop() // nothing of the loop outlives it
	defer lp.relay.stop()
	evs := make([]poll.Event, batchSize)
	var (
		parked   time.Time // when the loop last parked in the runtime's poller
		onTimer  bool      // the next wait is the timer's
		fromPark bool      // this call of drain follows a park (not a timer)
	)
	drain := func(uintptr) bool {
		now := time.Now()
		probe := fromPark && !parked.IsZero() && now.Sub(parked) >= lateWake
		fromPark = true // any further call follows a park
		late := lp.lateAt.Load()
		starved := within(late, int64(now.Sub(lp.epoch)), starvedHold)
		if starved && runtime.GOMAXPROCS(0) > 1 {
			// With more than one P a timer fires only at its own P's
			// scheduling points, while sysmon's wake-ups reach whichever
			// P is preempted first: waiting on timers measured worse
			// there (package doc); goroutines assist instead, and the
			// probe keeps telling whether the starvation lasts.
			starved, probe = false, true
		}
		for {
			n, err := lp.poller.Wait(evs)
			lp.polledAt.Store(int64(now.Sub(lp.epoch)))
			if err != nil {
				// Only EBADF, EFAULT or EINVAL remain, and none can happen
				// while Read holds the descriptor open.
				panic("netloop: poller wait failed: " + err.Error())
			}
			if n > 0 {
				lp.batches.Add(1)
				lp.events.Add(uint64(n))
				id := lp.newBatch()
				// Not while starved (lateAt, not starved: that is
				// decided once per wake-up, which full batches prolong).
				late := lp.lateAt.Load()
				claim := lp.batching.Load() && late == 0
				lp.dispatchAll(evs[:n], id, claim, lp.relaying(late))
				if len(lp.claims) > 0 {
					lp.recvAll()
				}
			}
			if n == len(evs) {
				// A full batch: let the goroutines just woken run before
				// the next one, as the runtime's own poller does, so that
				// a burst on thousands of connections (slow-loris) does
				// not queue every one of them ahead of a connection whose
				// event comes later.
				if !lp.collect(n) {
					runtime.Gosched()
				}
				now = time.Now()
				continue
			}
			if starved {
				onTimer = true
				return true // Read returns; run waits on the timer
			}
			if lp.collect(n) {
				now = time.Now() // the park begins after the batches
			}
			if probe && n > 0 {
				lp.probe(timerPoll)
			}
			// Drained: the poller's own readiness is edge-triggered in the
			// runtime too, and any event queued from now on raises a new
			// edge, so parking cannot miss it. (parked is when this
			// wake-up began, or its batches ended: close enough to tell
			// 5 ms gaps.)
			parked = now
			return false
		}
	}
	for {
		fromPark = !onTimer
		if onTimer {
			onTimer = false
			t := time.Now()
			time.Sleep(timerPoll)
			if late := time.Since(t) - timerPoll; late >= lateWake {
				// On timers only within starvedHold of a starved
				// wait: no CPU evidence needed (cpuMark).
				lp.overran(noCPU, late)
			}
		}
		// Read returns nil only when drain chose the timer, and an error
		// once the file is closed.
		if rc.Read(drain) != nil {
			return
		}
	}
}

// Assists: see "When every P is busy" in the package doc.
const (
	// staleAfter is how long a starved loop's poller may go unpolled
	// before a goroutine about to park polls it on the loop's behalf.
	staleAfter = 50 * time.Microsecond
	// assistHold is how long after the last starved wait goroutines
	// assist. Longer than starvedHold: with several Ps a probe fires late
	// only when its own P runs the hog, so starved waits come in bursts.
	assistHold = 200 * time.Millisecond
)

// assist polls the loop's poller on the loop's behalf and dispatches what
// it finds, if the loop was starved within assistHold and nobody has polled
// for staleAfter: the loop is then kept from running, so the readiness it
// tracks is stale and the reader about to park may have had its bytes for
// milliseconds. It reports whether it polled. Called by goroutines about to
// park, holding a reference to one of the loop's descriptors (so the poller
// is open). With stamp, it also records that one ran (see overran): the
// callers stamp a descriptor's first park and one in 16 after, so that a
// busy loop's stamp is fresh to a fraction of a millisecond without a clock
// read per park.
//
// Only when starved, and only once every goroutine the latest batch woke
// has run: on a P that is busy but not starved the loop polls when the run
// queue empties, as the runtime's poller would, while polls from every
// parking goroutine keep refilling the P's local run queue and leave what
// overflowed to the global queue waiting (measured with 1000 connections:
// p99 1.3 s instead of 40 ms without the starvation gate, and 101-180 ms in
// two runs of three with it but without waiting for the batch, after 3
// genuinely late waits).
func (lp *Loop) assist(stamp bool) bool {
	if stamp {
		lp.activeAt.Store(int64(time.Since(lp.epoch)))
	}
	late := lp.lateAt.Load()
	if late == 0 {
		return false // not starved: no clock read
	}
	now := int64(time.Since(lp.epoch))
	if now-late >= int64(assistHold) {
		lp.lateAt.CompareAndSwap(late, 0) // over: back to the fast path
		return false
	}
	if !assistDue(now, late, lp.polledAt.Load()) || lp.left.Load() > 0 || !lp.helping.CompareAndSwap(false, true) {
		return false
	}
	n, err := lp.helper.Wait(lp.helpEvs)
	lp.polledAt.Store(now)
	lp.probe(timerPoll) // is the P still starved?
	if err == nil {
		lp.assists.Add(1)
		if n > 0 {
			lp.batches.Add(1)
			lp.events.Add(uint64(n))
			lp.dispatchAll(lp.helpEvs[:n], lp.newBatch(), false, lp.relaying(late))
		}
	}
	lp.helping.Store(false)
	return true
}

// assistDue reports whether a goroutine about to park at now should poll
// for a loop last starved at late (0: never) and polled at polled, all
// counted from the loop's epoch.
func assistDue(now, late, polled int64) bool {
	return within(late, now, assistHold) && now-polled >= int64(staleAfter)
}

// probe arms a timer that checks, without taking the loop out of the
// runtime's poller, whether the P reaches a scheduling point soon: its
// callback runs at the first one after after. One probe is pending at a
// time.
func (lp *Loop) probe(after time.Duration) {
	if !lp.probing.CompareAndSwap(false, true) {
		return
	}
	cpu := lp.cpuMark()
	if cpu != noCPU {
		// What the process uses before the probe is due does not
		// count: the goroutines woken ahead of the timer use up to all
		// of the Ps then (measured: a process kept off the CPU by
		// another on its core used 2.6 ms of a 2.5 ms probe that came
		// back 5.5 ms late). This subtracts the most it can use, so
		// with more than one P a hog that the kernel gives under half
		// of each core is not seen, and a pause of only the probe's
		// own thread counts while other Ps compute.
		cpu += int64(after) * int64(runtime.GOMAXPROCS(0))
	}
	lp.probeCPU.Store(cpu)
	lp.probeDue.Store(int64(time.Since(lp.epoch) + after))
	lp.probeT.Reset(after)
}

// probed is the probe timer's callback.
func (lp *Loop) probed() {
	late := time.Duration(int64(time.Since(lp.epoch)) - lp.probeDue.Load())
	lp.probeLate.Store(int64(late))
	if late >= lateWake {
		lp.overran(lp.probeCPU.Load(), late)
	}
	lp.probing.Store(false)
	lp.suspect.Store(false) // after: a yield that found this probe pending relied on it
}

// cpuMark returns what a probe about to be armed starts from: noCPU (no
// evidence needed) within starvedHold of a starved wait, where a hog keeps
// making waits late (at GOMAXPROCS=1 every 10 ms time slice), and the
// process's CPU time otherwise, also in the rest of assistHold: pauses of
// the whole process (a CPU quota's period is 100 ms) would otherwise keep
// the starvation going that one hog began.
func (lp *Loop) cpuMark() int64 {
	if within(lp.lateAt.Load(), int64(time.Since(lp.epoch)), starvedHold) {
		return noCPU
	}
	return processCPU()
}

// overran records a wait that came back lateWake late, unless goroutines
// of the loop kept parking meanwhile: then a long run queue, not a goroutine
// that runs on, held the loop back (the P's next-goroutine slot that a timer
// wakes the loop into goes to every goroutine readied after it, and the loop
// then waits its turn at the tail). Taking that for starvation made the
// assists it starts refill the queue and keep itself going: with 1000
// connections p99 went from 34 ms to 1.26 s.
//
// Nor does a wait that came back late because the kernel kept the whole
// process off the CPU (another process on the same core, a container's CPU
// quota, a host pause): no goroutine ran ahead of the loop then, and
// nothing of what starvation turns on helps. A goroutine that runs on uses
// the CPU it keeps the loop from, so a wait that began at process CPU time
// cpu (not noCPU: see probe for what it discounts) and overran by late
// counts only if the process used a quarter of late more. (Measured: with
// a busy loop of another process on the test's only core, 2-4 false
// starved waits in each 1 s run of TestLongRunQueueIsNotStarvation; one
// failed CI.)
func (lp *Loop) overran(cpu int64, late time.Duration) {
	now := int64(time.Since(lp.epoch))
	if now-lp.activeAt.Load() < int64(lateWake/2) {
		return
	}
	if cpu != noCPU {
		if c := processCPU(); c != noCPU && c-cpu < int64(late/4) {
			return
		}
	}
	lp.multiP.Store(runtime.GOMAXPROCS(0) > 1)
	lp.lateAt.Store(max(now, 1))
	lp.late.Add(1)
}

// within reports whether a loop last starved at late (0: never) was so less
// than hold before now, both counted from its epoch.
func within(late, now int64, hold time.Duration) bool {
	return late != 0 && now-late < int64(hold)
}

// relaying reports whether a batch of a loop last starved at late (0:
// never) wakes its goroutines through the relay (relay.go): with more than
// one P, within starvedHold of a starved wait.
func (lp *Loop) relaying(late int64) bool {
	return late != 0 && lp.multiP.Load() && within(late, int64(time.Since(lp.epoch)), starvedHold)
}

// dispatchAll dispatches batch id. With relay, the goroutines it wakes are
// woken one after the other (relay.go).
func (lp *Loop) dispatchAll(evs []poll.Event, id uint32, claim, relay bool) {
	if relay {
		lp.relay.unstick()
	}
	for i := range evs {
		dispatch(&evs[i], id, claim, relay)
	}
	if relay {
		lp.relay.next()
	}
}

// dispatch applies one event to the Desc it names. An event whose tag does
// not match the registered generation belongs to a descriptor that was
// closed (and whose number may already be reused) after the batch was
// fetched: it is dropped (invariant 1). With claim (the loop's own
// dispatch, not an assist's), a read event claims the reader's read offer
// for the loop's recvAll, which then wakes the reader. With relay, the
// goroutines to wake join the loop's relay instead of being woken.
func dispatch(ev *poll.Event, id uint32, claim, relay bool) {
	d := fds.get(int(ev.Fd))
	if d == nil || (poll.HasTags && d.gen != ev.Tag) {
		return
	}
	if ev.Flags&(poll.ReadHup|poll.Hup|poll.Urgent) != 0 {
		d.r.hup.Store(true)
	}
	if ev.Flags&poll.Hup != 0 {
		d.w.hup.Store(true)
	}
	if ev.Flags&poll.Readable != 0 {
		d.advance(&d.r, id)
		if !claim || !d.lp.claim(d) {
			d.wake(&d.r, relay)
		}
	}
	if ev.Flags&poll.Writable != 0 {
		d.advance(&d.w, id)
		d.wake(&d.w, relay)
	}
}

// newBatch starts counting the goroutines a batch wakes. Goroutines an
// earlier batch woke no longer count, so one that never runs again (its
// descriptor closed) holds assists back only until the next batch.
func (lp *Loop) newBatch() uint32 {
	id := lp.batchID.Add(1)
	if id == 0 { // wrapped: 0 means "not woken by a batch"
		id = lp.batchID.Add(1)
	}
	if lp.left.Load() != 0 {
		lp.left.Store(0)
	}
	return id
}

// Stats reports the loops currently running and the counters of every loop
// the process has run.
type Stats struct {
	Loops int // loops in the running group (0 when stopped)
	Users int // registered descriptors
	// The embedded counters are over every loop since the process started:
	// the group stops when its last descriptor goes and a later Register
	// starts a new one, and these counters carry on, never going back.
	LoopStats
	// PerLoop holds the counters of each running loop, in order.
	PerLoop []LoopStats
}

// LoopStats are one loop's counters.
type LoopStats struct {
	Events  uint64 // events dispatched (by the loop or by assists)
	Batches uint64 // times the loop or an assist found events
	Late    uint64 // waits that overran: the loop was starved
	Assists uint64 // polls done on the loop's behalf while it was starved
	Recvs   uint64 // reads made in batches (recv.go)
	Sends   uint64 // writes made in batches (send.go)
	Flushes uint64 // io_uring_enter calls that made them
}

func (s *LoopStats) add(o LoopStats) {
	s.Events += o.Events
	s.Batches += o.Batches
	s.Late += o.Late
	s.Assists += o.Assists
	s.Recvs += o.Recvs
	s.Sends += o.Sends
	s.Flushes += o.Flushes
}

func (lp *Loop) stats() LoopStats {
	return LoopStats{Events: lp.events.Load(), Batches: lp.batches.Load(), Late: lp.late.Load(), Assists: lp.assists.Load(),
		Recvs: lp.recvs.Load(), Sends: lp.sends.Load(), Flushes: lp.flushes.Load()}
}

// ReadStats returns the group's current counters.
func ReadStats() Stats {
	mu.Lock()
	defer mu.Unlock()
	s := Stats{Users: users, LoopStats: retired}
	if cur != nil {
		s.Loops = len(cur.loops)
		for _, lp := range cur.loops {
			ls := lp.stats()
			s.PerLoop = append(s.PerLoop, ls)
			s.add(ls)
		}
	}
	return s
}

// ParkInRuntime reports whether a reader of d that finds its socket empty
// should wait in the runtime's poller, as package net's readers do, rather
// than in d's loop: with more than one P, within assistHold of a starved
// wait of the loop. Every P is then held by goroutines that never block,
// and only sysmon consults the runtime's poller (every 10 ms); it puts
// what it wakes on the global run queue, ahead of the goroutines it
// preempts, where both Ps take them. A loop woken there instead reaches
// its readers only after its own turn, through a relay that measured
// 0.92-0.95x package net's requests per second and 1.26-1.36x its p99 with
// two spinning goroutines at GOMAXPROCS=2; readers in the runtime's poller
// measured parity (bench/RESULTS.md, session of 2026-12-07 evening). With
// one P the loop's own timers serve better (see "When every P is busy" in
// the package doc), so it reports false there. Reads no clock unless the
// loop was starved since assistHold, and inlines to one load otherwise.
func (d *Desc) ParkInRuntime() bool {
	late := d.lp.lateAt.Load()
	return late != 0 && d.lp.parkInRuntime(late)
}

func (lp *Loop) parkInRuntime(late int64) bool {
	return lp.multiP.Load() && within(late, int64(time.Since(lp.epoch)), assistHold)
}

// ParkingElsewhere stamps the loop as active as Desc.wait does (a
// descriptor's first park and every 16th after), for a reader about to
// wait in the runtime's poller instead (ParkInRuntime): its loop's long
// run queue must not pass for starvation either (see overran). Call with
// the read lock held.
func (d *Desc) ParkingElsewhere() {
	d.r.parks++
	if d.r.parks%16 == 1 {
		d.lp.activeAt.Store(int64(time.Since(d.lp.epoch)))
	}
}
