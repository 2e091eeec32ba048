// Package poll is netloop's interface to the operating system's readiness
// poller: epoll on Linux (epoll_linux.go). It registers descriptors,
// fetches events in batches and translates them into Event values; it does
// not track readiness or wake goroutines, and touches sockets only to send
// the batches the loop hands to Ring (see "Batched sends" below).
//
// The kqueue backend (kqueue.go, for macOS and the BSDs) is cross-compiled
// and vetted but cannot be executed on the Linux machines netloop is
// developed on; its record translation (kevent.go) is unit-tested here.
//
// Only netloop's loop package imports it. Everything here is an
// implementation detail of netloop: it may change in any release.
//
// # Contract every backend implements
//
//	Open() (*Poller, error)      a new poller; its descriptor is close-on-exec
//	                             and non-blocking, and is itself pollable, so
//	                             the loop can wait for it through the Go runtime
//	(*Poller).FD() int           that descriptor
//	(*Poller).Add(fd, tag)       register fd once, edge-triggered, for read,
//	                             write and peer hang-up; where HasTags, tag
//	                             comes back in every Event for fd (a
//	                             generation number), otherwise Tag is 0
//	HasTags                      whether tags travel with events
//	(*Poller).Del(fd)            unregister fd; call before closing it
//	(*Poller).Wait(evs) (n, err) fetch up to len(evs) events without blocking
//	(*Poller).Share() *Poller    a second handle on the same poller with a
//	                             batch buffer of its own, never closed
//	(*Poller).Close()            release the poller
//
// Add and Del may be called from any goroutine; Wait from one goroutine at a
// time per handle. Two handles may wait at once: each event goes to one.
//
// Edge-triggered means an event is reported when readiness may have changed,
// never repeatedly for a state that did not change. Hang-up and errors are
// reported once and must be remembered by the caller (they are "sticky").
//
// # Batched sends
//
// Beside the poller, Ring (uring_linux.go) submits a batch of non-blocking
// sends with one io_uring_enter; each completes during the submission
// with write(2)'s result. OpenRing fails where that is not available (on
// other systems always), and the loop then writes one call at a time.
package poll

// Event is one readiness report, translated from the OS record.
type Event struct {
	Fd  int32  // the descriptor, as registered
	Tag uint32 // the tag given to Add for Fd
	// Flags says what changed: Readable, Writable, ReadHup, Hup (see below).
	Flags uint32
}

// Event flags.
const (
	// Readable: data, a pending connection or EOF may be readable.
	Readable uint32 = 1 << iota
	// Writable: the send buffer may have room.
	Writable
	// ReadHup: the peer shut down its writing side; reads will drain and then
	// see EOF. Sticky for the read direction.
	ReadHup
	// Hup: the connection is gone or in error (both directions); every
	// operation must try its syscall to learn the error. Sticky for both
	// directions.
	Hup
	// Urgent: TCP urgent (out-of-band) data arrived. A read stops short at
	// the urgent mark with more data queued and no further edge, so once
	// seen, a short read no longer proves the socket empty. Sticky.
	Urgent
)
