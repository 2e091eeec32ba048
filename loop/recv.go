//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package loop

import (
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/netloop/netloop/bufpool"
	"github.com/netloop/netloop/poll"
)

// RecvMax is the largest buffer a reader lets its loop fill (see "Batched
// reads" in the package doc); larger reads make their own syscall.
const RecvMax = 64 << 10

// Offer states.
const (
	offerWithdrawn = iota // the reader took its offer back (or took the result)
	offerOpen             // the reader waits; the loop may claim it
	offerClaimed          // the loop is reading for the reader
	offerDone             // the loop has read; the result is in the offer
)

// readOffer is a parked reader's offer to let the loop make its read.
// Everything the loop needs is in the offer itself (descriptor, buffer,
// whom to wake), so that an offer the loop finds in a dir after its reader
// withdrew it and the pool handed it to another reader is still read and
// answered correctly, for that other reader.
type readOffer struct {
	state atomic.Uint32
	pool  bool // read into a pooled buffer, not p
	d     *Desc
	p     []byte // the reader's buffer, or nil: pool says to read into a pooled one

	// The result (ReadResult's fields), set by the loop before offerDone.
	// Packed so that an offer, which a parked reader holds for as long as
	// its connection is idle, is 64 bytes (a size class) rather than 80.
	seq   uint64
	buf   *bufpool.Buf
	n     int32 // ≤ RecvMax
	errno int32
}

func (o *readOffer) result() ReadResult {
	return ReadResult{Seq: o.seq, Buf: o.buf, N: int(o.n), Err: syscall.Errno(o.errno)}
}

// ReadResult is a read(2) the loop made for a reader (WaitReadInto).
type ReadResult struct {
	// Seq is the read sequence loaded before the read, for SetReadDrained.
	Seq uint64
	// Buf is the pooled buffer the read filled, if the offer asked for one
	// (the caller owns it now), else nil: the read filled the caller's p.
	Buf *bufpool.Buf
	// N and Err are read(2)'s result: bytes read (0 at end of stream), or
	// the error (EAGAIN: nothing after all).
	N   int
	Err syscall.Errno
}

var readOffers = sync.Pool{New: func() any { return new(readOffer) }}

// WaitReadInto is WaitRead for a reader that lets the loop make its read:
// the loop, when the read event comes, reads into p (or, with pool, into a
// pooled buffer it takes only then, so that an idle reader holds none)
// together with the reads of the other readers of its batch, in one
// io_uring_enter, and wakes the reader with the result. It returns the
// result and ok if the loop made the read, even if the deadline passed or
// Close began meanwhile (the bytes are the caller's: return them). With ok
// false it is WaitRead: nil means the caller should retry its own
// syscall. Where the loop cannot batch reads, or p is longer than
// RecvMax, it is WaitRead outright. Call with the read lock held.
func (d *Desc) WaitReadInto(seq uint64, p []byte, pool bool) (res ReadResult, ok bool, err error) {
	dr := &d.r
	if !d.lp.batching.Load() || len(p) > RecvMax {
		return res, false, d.wait(dr, seq, nil)
	}
	o := readOffers.Get().(*readOffer)
	o.d, o.p, o.pool = d, p, pool
	o.state.Store(offerOpen)
	d.offer.Store(o)
	// Wait for the offer to be claimed, not only for an event: a loop
	// that advanced seq, then was held up (its thread descheduled) before
	// it claimed, claims an offer placed after that advance, so seq then
	// may never move again (the claimed read took the last bytes).
	err = d.wait(dr, seq, o)
	// Settle the offer: take it back, or wait for the loop to finish the
	// read it claimed (it does so within its current batch).
	for !o.state.CompareAndSwap(offerOpen, offerWithdrawn) {
		s := o.state.Load()
		if s == offerDone {
			res, ok = o.result(), true
			break
		}
		if s == offerWithdrawn {
			// The loop could not make the read: make it yourself, even
			// if no event moved seq (the loop's claim may have come
			// after the reader saw its event's advance).
			dr.drained = false
			break
		}
		// Claimed: park until recvAll's signal (it stores the state
		// before it loads parked, as wait's wakers do).
		dr.announce()
		token := false
		if o.state.Load() == offerClaimed {
			<-dr.wake
			token = true
		}
		d.lp.relay.handOn(token, dr.unpark())
		d.lp.spread()
	}
	d.offer.Store(nil)
	// The state stays withdrawn or done (the loop may still hold o from
	// d.offer and try to claim it, and must fail); the rest is cleared for
	// the next reader.
	o.d, o.p, o.pool, o.seq, o.buf, o.n, o.errno = nil, nil, false, 0, nil, 0, 0
	readOffers.Put(o)
	if ok {
		err = nil
	}
	return res, ok, err
}

// taken reports whether the loop has claimed o (nil: no offer). The loop
// stores the state before it loads parked (recvAll's signal), as wait's
// other wakers store before they load it.
func (o *readOffer) taken() bool {
	return o != nil && o.state.Load() != offerOpen
}

// claim takes the open read offer of d's reader, if any, for the loop to
// read for it (recvAll), and reports whether it was d's own offer: then
// the loop wakes d's reader only once it has read. An offer found in d but
// since withdrawn and reused by another Desc's reader is read for that
// reader, which recvAll wakes like any other (a reader waits for its
// offer to be taken as well as for an event: wait).
func (lp *Loop) claim(d *Desc) bool {
	o := d.offer.Load()
	if o == nil || !o.state.CompareAndSwap(offerOpen, offerClaimed) {
		return false
	}
	lp.claims = append(lp.claims, o)
	return o.d == d
}

// recvAll makes the reads of the offers claimed, with one io_uring_enter
// per ring's worth, and wakes their readers. Called by the loop goroutine
// only, with every offer in claims claimed (so each reader waits, holding
// its reference to the descriptor, until it is woken here).
func (lp *Loop) recvAll() {
	claims := lp.claims
	defer func() { lp.claims = lp.claims[:0] }()
	for len(claims) > 0 {
		k := min(len(claims), len(lp.ops))
		ops := lp.ops[:k]
		for i, o := range claims[:k] {
			o.seq = o.d.r.seq.Load()
			buf := o.p
			if o.pool {
				o.buf = bufpool.Get()
				buf = o.buf.B
			}
			ops[i] = poll.Op{FD: o.d.fd, P: buf, Recv: true}
		}
		if lp.do(ops) {
			lp.recvs.Add(uint64(k))
		}
		for i, o := range claims[:k] {
			ops[i].P = nil
			claims[i] = nil
			d := o.d          // o is the reader's again once the state is stored
			if ops[i].N < 0 { // not made: the reader reads itself
				if o.buf != nil {
					bufpool.Put(o.buf)
					o.buf = nil
				}
				o.state.Store(offerWithdrawn)
			} else {
				o.n, o.errno = int32(ops[i].N), int32(ops[i].Err)
				o.state.Store(offerDone)
			}
			d.r.signal()
		}
		claims = claims[k:]
	}
}
