//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package poll

import (
	"os"

	"golang.org/x/sys/unix"
)

// This backend cannot be executed on the Linux machines netloop is built
// and tested on: it is cross-compiled and vetted for every BSD in CI, and
// its record translation (kevFlags) is unit-tested with synthetic records.
//
// How the invariants of DESIGN.md read for kqueue:
//
//   - Registration is once per descriptor: EVFILT_READ and EVFILT_WRITE,
//     both EV_ADD|EV_CLEAR (edge-triggered: a filter fires again only when
//     its state changes). Nothing is re-armed on the hot path.
//   - EV_EOF is kqueue's hang-up. It is not repeated once consumed under
//     EV_CLEAR, so the loop records it as sticky, exactly as EPOLLRDHUP.
//     Data still buffered when EV_EOF arrives stays readable (the record's
//     data field counts it); netloop never uses data as a byte count, it
//     only tells readers to try their syscall.
//   - udata is not used for the generation tag: on most BSDs it is a
//     pointer field, and netloop never stores Go pointers, nor integers
//     disguised as pointers, where the garbage collector would see them.
//     Every Event from this backend carries Tag 0 (HasTags is false), so a
//     record fetched for a descriptor that was closed, and whose number was
//     reused before the record was dispatched, reaches the new descriptor.
//     That is safe because the loop performs no I/O: the new owner merely
//     retries a syscall and parks again on EAGAIN. The one lasting effect,
//     a stale EV_EOF marking the new socket as hung up, only disables the
//     short-read shortcut for that socket (reads then always try read(2)).
//   - Invariants 3 to 5 (Close wakes everyone, deadlines, nothing lost)
//     live above the poller, in package loop and the root package, and
//     are the same code for both backends. The one input they take from
//     here is readiness, which EV_CLEAR delivers as epoll's EPOLLET does;
//     and since urgent data is not reported here, readers on this backend
//     trust only EAGAIN, never a short read (ShortReadProvesEmpty).
//   - The loop is woken by the Go runtime, which watches the kqueue
//     descriptor itself (a kqueue is readable while events are pending), so
//     no EVFILT_USER event or pipe is needed; closing the descriptor's
//     *os.File stops the loop.

// HasTags reports whether Events carry the tag given to Add.
const HasTags = false

// ShortReadProvesEmpty is false here: the BSDs report urgent data
// differently (EV_OOBAND on macOS only), and this backend cannot be run on
// the machines it is developed on, so readers trust only EAGAIN.
const ShortReadProvesEmpty = false

// Poller is a kqueue.
type Poller struct {
	fd  int
	raw []unix.Kevent_t // owned by the goroutine that calls Wait
}

// Open creates a kqueue, close-on-exec and non-blocking.
func Open() (*Poller, error) {
	fd, err := unix.Kqueue()
	if err != nil {
		return nil, os.NewSyscallError("kqueue", err)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	return &Poller{fd: fd}, nil
}

// FD returns the kqueue descriptor.
func (p *Poller) FD() int { return p.fd }

// Add registers fd for read and write readiness, edge-triggered. tag is
// not carried (see HasTags).
func (p *Poller) Add(fd int, tag uint32) error {
	var ch [2]unix.Kevent_t
	unix.SetKevent(&ch[0], fd, unix.EVFILT_READ, unix.EV_ADD|unix.EV_CLEAR)
	unix.SetKevent(&ch[1], fd, unix.EVFILT_WRITE, unix.EV_ADD|unix.EV_CLEAR)
	if _, err := unix.Kevent(p.fd, ch[:], nil, nil); err != nil {
		return os.NewSyscallError("kevent", err)
	}
	return nil
}

// Del unregisters fd; call it before closing fd.
func (p *Poller) Del(fd int) error {
	var ch [2]unix.Kevent_t
	unix.SetKevent(&ch[0], fd, unix.EVFILT_READ, unix.EV_DELETE)
	unix.SetKevent(&ch[1], fd, unix.EVFILT_WRITE, unix.EV_DELETE)
	if _, err := unix.Kevent(p.fd, ch[:], nil, nil); err != nil && err != unix.ENOENT {
		return os.NewSyscallError("kevent", err)
	}
	return nil
}

// Wait fetches up to len(evs) pending records without blocking.
func (p *Poller) Wait(evs []Event) (int, error) {
	if cap(p.raw) < len(evs) {
		p.raw = make([]unix.Kevent_t, len(evs))
	}
	raw := p.raw[:len(evs)]
	var zero unix.Timespec
	n, err := unix.Kevent(p.fd, nil, raw, &zero)
	if err != nil {
		if err == unix.EINTR {
			return 0, nil
		}
		return 0, os.NewSyscallError("kevent", err)
	}
	for i := 0; i < n; i++ {
		k := &raw[i]
		flags := uint64(k.Flags)
		evs[i] = Event{
			Fd: int32(k.Ident),
			Flags: kevFlags(int64(k.Filter) == unix.EVFILT_WRITE, flags&unix.EV_EOF != 0,
				uint32(k.Fflags), flags&unix.EV_ERROR != 0),
		}
	}
	return n, nil
}

// Share returns a second handle on the same kqueue with a batch buffer of
// its own, for a second goroutine's Wait. It is never closed (Close the
// original) and is used only while the original is open.
func (p *Poller) Share() *Poller { return &Poller{fd: p.fd} }

// Close closes the kqueue. A loop that wrapped FD in an *os.File closes
// the file instead, never both.
func (p *Poller) Close() error { return unix.Close(p.fd) }
