//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package loop

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Desc is the reactor's view of one registered descriptor: its lifetime
// (references and closing), and per direction its readiness, deadline and
// the goroutine parked on it.
//
// # Usage protocol (the root package follows it for every operation)
//
//	if !d.Incref() { closed }          // before any syscall on d.FD()
//	defer d.Decref()
//	d.LockRead(); defer d.UnlockRead() // one reader at a time (writer: LockWrite)
//	if err := d.CheckRead(); err != nil { closed or deadline passed }
//	for {
//		seq := d.ReadSeq()             // load before the syscall
//		if d.ReadDrained(seq) { if err := d.WaitRead(seq); err != nil {...}; continue }
//		n, err := syscall
//		EAGAIN: d.SetReadDrained(seq, true); continue
//		short read on a stream: d.SetReadDrained(seq, false)
//	}
//	writes: as reads, with WriteSeq and WaitWrite; after a write that
//	moved bytes, d.Wrote() (see ReadDrained)
//
// Close marks d closing, wakes every parked goroutine, waits until the last
// reference is dropped, then unregisters the descriptor from its poller,
// clears its table slot, and only then closes it (invariant 1).
type Desc struct {
	fd  int
	gen uint32 // generation: travels with every poller event for fd
	// wrote: bytes were written, while the loop counted as starved, since
	// the reader's last short read (Wrote, SetReadDrained); accessed
	// atomically, and stored only on change.
	wrote atomic.Bool
	lp    *Loop

	// state is the closing bit (bit 0) and the reference count (bits 1..).
	// Accessed atomically.
	state atomic.Uint64
	// idle, set by Close once it has begun closing, receives a token when
	// the last reference is dropped. Made only then: most of a Desc's life
	// it would be 96 bytes of channel for nothing.
	idle atomic.Pointer[chan struct{}]

	r, w dir

	// offer is the parked reader's read offer (recv.go), or nil. Stored
	// by the reader, loaded by the loop. Here rather than in dir: only
	// reads have one, and a Desc stays in its size class (176 bytes).
	offer atomic.Pointer[readOffer]
}

const (
	closingBit = 1
	refUnit    = 2
)

// dir is one direction (read or write) of a Desc.
//
// Readiness: the loop advances seq on every event for this direction. A
// goroutine concludes "nothing to do until the next event" only for the seq
// value it loaded before its syscall: if an event arrived during the
// syscall, seq moved and the conclusion is void (invariant 2). seq is 64
// bits wide so that it cannot wrap back onto a remembered value.
//
// hup is sticky: once a hang-up, an error or (read side) urgent data has
// been seen, a short read no longer proves the socket empty, because the
// kernel may stop a read short with more queued and raise no new edge.
type dir struct {
	mu sync.Mutex // serialises operations in this direction

	seq    atomic.Uint64 // advanced by the loop
	hup    atomic.Bool   // sticky: hang-up, error or urgent data seen
	parked atomic.Bool   // a goroutine is (about to be) blocked on wake
	// wake has capacity 1; a token means "look again". Made by the first
	// goroutine to park (announce), so that a direction nobody waits on
	// (the write side of most connections) holds no channel; loaded by
	// wakers only after they see parked, which is stored after it.
	wake chan struct{}

	// deadline: 0 none, -1 already passed, otherwise mono() nanoseconds.
	// Accessed atomically.
	deadline atomic.Int64

	timer *time.Timer // reused for waits with a deadline; guarded by mu
	// wokeBy is the batch whose token woke the parked goroutine, while the
	// loop counts them (it is starved); 0: none. Beside the byte-wide
	// fields below so that a Desc stays in its size class.
	wokeBy atomic.Uint32

	// Guarded by mu.
	drained    bool  // the direction was found empty at drainedSeq
	certain    bool  // by EAGAIN, not by a short read
	parks      uint8 // waits, for Loop.assist's sampled stamp (wraps)
	drainedSeq uint64
}

// newDesc makes a new Desc for each registration. Descs must not be pooled
// or otherwise reused: setDeadline writes to a Desc without a reference
// and may do so after its Close has returned (see setDeadline).
func newDesc(fd int, gen uint32, lp *Loop) *Desc {
	return &Desc{fd: fd, gen: gen, lp: lp}
}

// FD returns the descriptor. Use it only while holding a reference.
func (d *Desc) FD() int { return d.fd }

// Incref takes a reference, failing once closing has begun.
func (d *Desc) Incref() bool {
	if d.state.Add(refUnit)&closingBit != 0 {
		d.Decref()
		return false
	}
	return true
}

// Decref drops a reference taken by Incref.
func (d *Desc) Decref() {
	if d.state.Add(^uint64(refUnit-1)) == closingBit {
		// Close stores idle before it loads state; we load it after our
		// store to state: one of the two sees the other's.
		if idle := d.idle.Load(); idle != nil {
			select {
			case *idle <- struct{}{}:
			default:
			}
		}
	}
}

// Closing reports whether Close has begun.
func (d *Desc) Closing() bool { return d.state.Load()&closingBit != 0 }

// Close begins closing d, wakes every goroutine parked on it, waits for the
// references to drain and then tears d down, calling closeFD exactly once
// after the descriptor has left the poller and the table. It returns
// net.ErrClosed if d was already closing.
func (d *Desc) Close(closeFD func(fd int) error) error {
	if d.state.Or(closingBit)&closingBit != 0 {
		return net.ErrClosed
	}
	idle := make(chan struct{}, 1)
	d.idle.Store(&idle)
	d.r.signal()
	d.w.signal()
	for d.state.Load() != closingBit {
		<-idle
	}
	// No goroutine is inside a syscall on fd any more, and none can enter.
	d.lp.poller.Del(d.fd) // cannot fail for a registered descriptor
	fds.remove(d)
	err := closeFD(d.fd)
	d.r.stopTimer()
	d.w.stopTimer()
	release()
	return err
}

// LockRead serialises readers (Read, Accept, RawConn.Read).
func (d *Desc) LockRead() { d.r.mu.Lock() }

// UnlockRead undoes LockRead.
func (d *Desc) UnlockRead() { d.r.mu.Unlock() }

// LockWrite serialises writers.
func (d *Desc) LockWrite() { d.w.mu.Lock() }

// UnlockWrite undoes LockWrite.
func (d *Desc) UnlockWrite() { d.w.mu.Unlock() }

// CheckRead reports net.ErrClosed if d is closing, or
// os.ErrDeadlineExceeded if the read deadline has passed.
func (d *Desc) CheckRead() error { return d.check(&d.r) }

// CheckWrite is CheckRead for the write direction.
func (d *Desc) CheckWrite() error { return d.check(&d.w) }

func (d *Desc) check(dr *dir) error {
	if d.Closing() {
		return net.ErrClosed
	}
	if dl := dr.deadline.Load(); dl < 0 || (dl > 0 && mono() >= dl) {
		return os.ErrDeadlineExceeded
	}
	return nil
}

// ReadSeq returns the read sequence, to be loaded before a syscall.
func (d *Desc) ReadSeq() uint64 { return d.r.seq.Load() }

// WriteSeq returns the write sequence.
func (d *Desc) WriteSeq() uint64 { return d.w.seq.Load() }

// ReadHup reports whether the peer's hang-up (or an error) has been seen.
func (d *Desc) ReadHup() bool { return d.r.hup.Load() }

// SetReadDrained records that a read syscall started at seq found the
// socket empty. certain is true for EAGAIN; false for a short read on a TCP
// stream, which proves nothing once the peer has hung up (data and FIN can
// arrive as one edge) or urgent data was seen (a read stops at the urgent
// mark). Callers must not report short reads of unix sockets at all: those
// stop at every message carrying SCM_RIGHTS or credentials. Call with the
// read lock held.
func (d *Desc) SetReadDrained(seq uint64, certain bool) {
	if !certain {
		if d.wrote.Load() {
			d.wrote.Store(false)
		}
		if d.r.hup.Load() {
			return
		}
	}
	d.r.drained, d.r.certain, d.r.drainedSeq = true, certain, seq
}

// Wrote records that a write put bytes into the socket: a peer that
// answers them may have answered already (ReadDrained). Only while the
// loop counts as starved, the one time ReadDrained asks: otherwise a
// request and its reply would cost two stores to a line the reader and the
// writer share.
func (d *Desc) Wrote() {
	if d.lp.lateAt.Load() != 0 && !d.wrote.Load() {
		d.wrote.Store(true)
	}
}

// ReadDrained reports whether the socket is known to be empty at seq, so
// that a read syscall would only return EAGAIN. Call with the read lock held.
//
// A short read proves the socket empty only at the moment of the read, and
// seq stands for "no event since" only while the loop keeps up. While the
// loop is starved (see "When every P is busy" in the package doc) its seq
// lags (lateAt is set: within 200 ms of a starved wait, as for assists): a
// peer that answers our write at once (a client woken by it on the
// same CPU) has often sent its next request before our reader comes back,
// and package net's reader, which always tries read(2), reads it then and
// keeps its P, where ours would park until the starved loop saw the event,
// a time slice later. So while the loop is starved, a short read followed
// by a write (Wrote) no longer counts, with more than one P: the reader
// tries its read, and parks after EAGAIN at the same seq (GOMAXPROCS=2,
// two goroutines spinning: 1.06-1.08x the requests). With one P, where the
// loop waits on timers ahead of the hog, it measured no gain (0.98-1.04x
// the requests, for 1.38x the syscalls). Without the write, slow-loris
// peers, which never get one, made their readers pay a read that found
// nothing for every byte they trickled.
func (d *Desc) ReadDrained(seq uint64) bool {
	return d.r.drained && d.r.drainedSeq == seq &&
		(d.r.certain || d.lp.lateAt.Load() == 0 || !d.lp.multiP.Load() || !d.wrote.Load())
}

// WaitRead parks until a read event newer than seq, the read deadline, or
// Close. It returns nil when the caller should retry its syscall. Call with
// the read lock held.
func (d *Desc) WaitRead(seq uint64) error { return d.wait(&d.r, seq, nil) }

// WaitWrite is WaitRead for the write direction.
func (d *Desc) WaitWrite(seq uint64) error { return d.wait(&d.w, seq, nil) }

// wait parks until dr's sequence moves past seq, the deadline passes or d
// closes, or, with an offer o (WaitReadInto), until the loop claims o.
func (d *Desc) wait(dr *dir, seq uint64, o *readOffer) error {
	for {
		if err := d.check(dr); err != nil {
			return err
		}
		if dr.seq.Load() != seq || o.taken() {
			return nil
		}
		// Stamp the loop as active on a descriptor's first park and every
		// 16th after: a burst of new connections makes the run queue long
		// before any of them has parked 16 times (with 1000 of them, for
		// the first 0.3 s), and an unstamped long queue passes for
		// starvation (overran).
		dr.parks++
		if d.lp.assist(dr.parks%16 == 1) { // the loop is starved: poll for it, look again
			continue
		}
		// Announce the park, then look again: the loop (seq), Close
		// (closing) and the deadline setters store before they load
		// parked, so either they see parked or we see their store.
		dr.announce()
		if err := d.check(dr); err != nil || dr.seq.Load() != seq || o.taken() {
			d.lp.relay.handOn(dr.unpark(), false)
			continue
		}
		token := true
		if dl := dr.deadline.Load(); dl > 0 {
			token = dr.sleep(time.Duration(dl - mono()))
		} else {
			<-dr.wake
		}
		d.woke(dr)
		d.lp.relay.handOn(token, dr.unpark())
		d.lp.spread()
	}
}

// unpark clears parked and takes a token that a waker sent meanwhile
// (after the caller's last look, or beside the one it took), reporting
// whether there was one. The caller looks again anyway; taking the token
// spares it a spurious wake-up at its next park and, if the relay sent it,
// lets the caller hand the relay on (relay.go).
func (dr *dir) unpark() bool {
	dr.parked.Store(false)
	select {
	case <-dr.wake:
		return true
	default:
		return false
	}
}

// sleep blocks until a token arrives or d has passed, and reports whether
// it took a token.
func (dr *dir) sleep(d time.Duration) (token bool) {
	if dr.timer == nil {
		dr.timer = time.NewTimer(d)
	} else {
		dr.timer.Reset(d)
	}
	select {
	case <-dr.wake:
		token = true
	case <-dr.timer.C:
	}
	dr.timer.Stop()
	return token
}

func (dr *dir) stopTimer() {
	// Close runs after every operation has left, so mu is free and nobody
	// is sleeping on the timer.
	dr.mu.Lock()
	if dr.timer != nil {
		dr.timer.Stop()
	}
	dr.mu.Unlock()
}

// advance is called by the loop (or an assist) for every event in this
// direction, from batch id, before it wakes the parked goroutine (wake; a
// reader whose read it claimed, recv.go, only once it has made the read).
// While the loop is starved, a goroutine it wakes counts in the loop's left
// until it runs (Loop.assist waits for none to be left); otherwise nothing
// is counted, and the hot path pays one load.
func (d *Desc) advance(dr *dir, id uint32) {
	dr.seq.Add(1)
	if dr.parked.Load() && d.lp.lateAt.Load() != 0 && dr.wokeBy.Swap(id) != id {
		d.lp.left.Add(1)
	}
}

// wake wakes dr's parked goroutine after an advance: at once, or with
// relay through the loop's relay (relay.go).
func (d *Desc) wake(dr *dir, relay bool) {
	if relay {
		d.lp.relay.push(dr)
	} else {
		dr.signal()
	}
}

// woke is called by a goroutine that parked in dr and runs again.
func (d *Desc) woke(dr *dir) {
	if dr.wokeBy.Load() == 0 {
		return // not counted: no write to the shared line
	}
	if id := dr.wokeBy.Swap(0); id != 0 && id == d.lp.batchID.Load() {
		d.lp.left.Add(-1)
	}
}

// announce tells wakers that the calling goroutine is about to block on
// wake, making wake first if no goroutine has parked in dr before. Call
// with dr's lock held (only its holder parks), then look again before
// blocking.
func (dr *dir) announce() {
	if dr.wake == nil {
		dr.wake = make(chan struct{}, 1)
	}
	dr.parked.Store(true)
}

// signal wakes the parked goroutine, if any, to look again, and reports
// whether one was parked (then it has a token: this one, or one not yet
// taken).
func (dr *dir) signal() bool {
	if !dr.parked.Load() {
		return false
	}
	select {
	case dr.wake <- struct{}{}:
	default:
	}
	return true
}

// SetReadDeadline sets the read deadline; the zero time clears it. It
// applies to a Read already parked: that Read wakes and looks again.
func (d *Desc) SetReadDeadline(t time.Time) error { return d.setDeadline(t, true, false) }

// SetWriteDeadline sets the write deadline.
func (d *Desc) SetWriteDeadline(t time.Time) error { return d.setDeadline(t, false, true) }

// SetDeadline sets both deadlines.
func (d *Desc) SetDeadline(t time.Time) error { return d.setDeadline(t, true, true) }

// setDeadline takes no reference, unlike the operations: it never touches
// the descriptor, only d's memory (the deadline words and a parked
// goroutine's wake channel), which outlives Close. So it only checks that
// Close has not begun (as package net, it fails after Close) and spares
// net/http's three deadline changes per request the two atomic
// read-modify-writes of Incref and Decref on the connection's Desc. A
// deadline set while Close runs, or after it returned, is harmless: Close
// has woken or will wake every parked goroutine, none parks again, and the
// Desc is never reused for another descriptor (newDesc).
func (d *Desc) setDeadline(t time.Time, r, w bool) error {
	if d.Closing() {
		return net.ErrClosed
	}
	v := int64(0)
	if !t.IsZero() {
		// A time before the process started is past without reading the
		// clock: net/http aborts its background read with time.Unix(1, 0)
		// after every request.
		if t.Before(epoch) {
			v = -1
		} else if until := time.Until(t); until <= 0 {
			v = -1
		} else {
			v = mono() + int64(until)
			if v < 0 { // overflow: a deadline centuries away
				v = 1<<63 - 1
			}
		}
	}
	if r {
		d.r.deadline.Store(v)
		d.r.signal()
	}
	if w {
		d.w.deadline.Store(v)
		d.w.signal()
	}
	return nil
}

// epoch anchors mono; time.Since reads the monotonic clock.
var epoch = time.Now()

// mono returns monotonic nanoseconds since epoch, always > 0 in practice.
func mono() int64 { return int64(time.Since(epoch)) + 1 }

// ReadDeadline returns the read deadline as a time (zero: none; a time
// long past if it has passed), for a reader that waits elsewhere than in
// d's loop (ParkInRuntime) and must keep the same deadline there.
func (d *Desc) ReadDeadline() time.Time {
	switch v := d.r.deadline.Load(); {
	case v == 0:
		return time.Time{}
	case v < 0:
		return time.Unix(1, 0)
	default:
		return epoch.Add(time.Duration(v - 1))
	}
}
