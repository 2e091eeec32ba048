package netloop

import (
	"expvar"
	"net"
	"sync/atomic"
)

// Stats is a snapshot of netloop's counters, for operators. A Listener's
// Stats covers the connections it accepted; ReadStats covers the process
// and adds the loops' figures. Counters are atomic and cheap enough to
// leave on; a snapshot is not taken atomically across fields.
type Stats struct {
	OpenConns     int64  // accepted connections not yet closed
	AcceptedConns uint64 // connections accepted
	BytesRead     uint64 // bytes returned by Read (and WriteTo)
	BytesWritten  uint64 // bytes accepted by Write (and ReadFrom)
	// AcceptWaits counts Accept calls that had to wait because
	// ListenConfig.MaxConns connections were open.
	AcceptWaits  uint64
	AcceptErrors AcceptErrors

	// Process-wide only (zero in a Listener's Stats, and on the
	// package-net backend):
	Loops int // event loops running
	// LoopEvents, LoopWakeups, LoopStarved and LoopAssists count the
	// readiness events dispatched, the times a loop (or an assist) found
	// events, the loops' starved waits and the assists (see LoopStats),
	// over every loop the process has run: the loops stop when the last
	// connection and listener close and start again with the next, and
	// these counters never go back.
	LoopEvents  uint64
	LoopWakeups uint64
	LoopStarved uint64
	LoopAssists uint64
	// BatchedWrites counts the writes (each a part of a Write) the loops
	// made in batches on Linux, WriteBatches the io_uring_enter calls that
	// made them, and BatchedReads the reads the loops made for readers
	// woken by their events (see "Batched writes and reads" in README.md).
	BatchedWrites uint64
	WriteBatches  uint64
	BatchedReads  uint64
	// PerLoop holds the counters of each running loop (since it started).
	PerLoop []LoopStats
	// SyscallsAvoided counts Reads that parked at once because the socket
	// was known to be empty, where package net would first have called
	// read(2) and got EAGAIN. (The read after the park is counted in
	// BatchedReads when the loop makes it.)
	SyscallsAvoided uint64
	// RuntimeParks counts the waits of Reads in the runtime's poller, as
	// package net's readers wait, because their loop was starved with more
	// than one P (see "How it works" in README.md), and RuntimeParkFDs the
	// duplicate descriptors they wait on that are open now.
	RuntimeParks   uint64
	RuntimeParkFDs int
	BuffersInUse   int64 // pooled read buffers holding unread bytes
}

// LoopStats are one event loop's counters.
type LoopStats struct {
	Events  uint64 // readiness events dispatched
	Wakeups uint64 // times the loop woke with events, or an assist found some
	// Starved counts the loop's waits that overran by 5 ms or more because
	// goroutines that did not block held every P; each one makes the loop
	// poll on a timer for the next 20 ms (with GOMAXPROCS=1) and
	// connections assist it for the next 200 ms. Steady growth means the
	// process is CPU-bound.
	Starved uint64
	// Assists counts polls of the loop's poller made, while it was
	// starved, by a connection's goroutine about to wait for readiness.
	Assists uint64
	// BatchedWrites, WriteBatches and BatchedReads are Stats' for this
	// loop.
	BatchedWrites uint64
	WriteBatches  uint64
	BatchedReads  uint64
}

// AcceptErrors counts failed accepts by kind.
type AcceptErrors struct {
	EMFILE uint64 // process out of descriptors
	ENFILE uint64 // system out of descriptors
	Other  uint64
}

// counters are the live values behind Stats.
type counters struct {
	open                      atomic.Int64
	accepted, read, written   atomic.Uint64
	acceptWaits               atomic.Uint64
	emfile, enfile, otherErrs atomic.Uint64
}

// global counts for the whole process.
var global counters

func (c *counters) snapshot() Stats {
	return Stats{
		OpenConns:     c.open.Load(),
		AcceptedConns: c.accepted.Load(),
		BytesRead:     c.read.Load(),
		BytesWritten:  c.written.Load(),
		AcceptWaits:   c.acceptWaits.Load(),
		AcceptErrors: AcceptErrors{
			EMFILE: c.emfile.Load(),
			ENFILE: c.enfile.Load(),
			Other:  c.otherErrs.Load(),
		},
	}
}

// ReadStats returns the process-wide counters.
func ReadStats() Stats {
	s := global.snapshot()
	backendStats(&s)
	return s
}

// Stats returns the counters of the connections l accepted.
func (l *Listener) Stats() Stats {
	if !l.ok() {
		return Stats{}
	}
	return l.cnt.snapshot()
}

// PublishExpvar publishes ReadStats under name in package expvar (and so
// at /debug/vars when expvar's handler is served). Like expvar.Publish, it
// panics if name is already in use.
func PublishExpvar(name string) {
	expvar.Publish(name, expvar.Func(func() any { return ReadStats() }))
}

// accounting ties an accepted connection to its listener's counters and
// MaxConns tokens (one of which it holds until closed).
type accounting struct {
	cnt   *counters
	slots chan struct{}
}

// closeAccounted closes fd and, on its first close, gives back what it
// holds in the accounting.
func closeAccounted(fd *netFD) error {
	err := fd.Close()
	if err != net.ErrClosed && fd.acct.cnt != nil {
		fd.acct.cnt.open.Add(-1)
		global.open.Add(-1)
		if fd.acct.slots != nil {
			<-fd.acct.slots
		}
	}
	return err
}

// countAccept records an accepted connection on l and the process.
func (l *Listener) countAccept() {
	l.cnt.accepted.Add(1)
	l.cnt.open.Add(1)
	global.accepted.Add(1)
	global.open.Add(1)
}

// countAcceptError records a failed accept by kind.
func (l *Listener) countAcceptError(err error) {
	switch acceptErrorKind(err) {
	case kindEMFILE:
		l.cnt.emfile.Add(1)
		global.emfile.Add(1)
	case kindENFILE:
		l.cnt.enfile.Add(1)
		global.enfile.Add(1)
	default:
		l.cnt.otherErrs.Add(1)
		global.otherErrs.Add(1)
	}
}

const (
	kindOther = iota
	kindEMFILE
	kindENFILE
)
