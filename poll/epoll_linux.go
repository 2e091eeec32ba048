package poll

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// HasTags reports whether Events carry the tag given to Add.
const HasTags = true

// ShortReadProvesEmpty reports whether a short read of a TCP socket, with
// no hang-up or urgent data reported, proves its receive queue empty.
const ShortReadProvesEmpty = true

// Poller is an epoll instance.
type Poller struct {
	fd int
	// raw is the batch buffer for epoll_wait; owned by the goroutine that
	// calls Wait.
	raw []unix.EpollEvent
}

// Open creates an epoll instance. Its descriptor is close-on-exec and
// non-blocking: non-blocking so that os.NewFile hands it to the runtime's
// poller (an epoll descriptor is itself pollable: it becomes readable when
// events are pending), which lets the loop park as an ordinary goroutine
// instead of holding a thread in epoll_wait.
func Open() (*Poller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	return &Poller{fd: fd}, nil
}

// FD returns the epoll descriptor.
func (p *Poller) FD() int { return p.fd }

// Share returns a second handle on the same epoll instance with a batch
// buffer of its own, for a second goroutine's Wait. It is never closed
// (Close the original) and is used only while the original is open.
func (p *Poller) Share() *Poller { return &Poller{fd: p.fd} }

// Add registers fd for edge-triggered read, urgent-data, write and hang-up
// events. The
// tag travels in the event's Pad field (set and read by name: the layout of
// unix.EpollEvent differs between amd64 and arm64); no Go pointer is ever
// stored in epoll_data.
func (p *Poller) Add(fd int, tag uint32) error {
	ev := unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLPRI | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET,
		Fd:     int32(fd),
		Pad:    int32(tag),
	}
	if err := unix.EpollCtl(p.fd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// Del unregisters fd. It must be called before fd is closed: epoll keys a
// registration on the open file description, so a duplicate of fd (File,
// fork) would otherwise keep reporting events for a number that may since
// have been reused.
func (p *Poller) Del(fd int) error {
	if err := unix.EpollCtl(p.fd, unix.EPOLL_CTL_DEL, fd, nil); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// Wait fetches up to len(evs) pending events without blocking and
// translates them. EINTR is reported as zero events.
func (p *Poller) Wait(evs []Event) (int, error) {
	if cap(p.raw) < len(evs) {
		p.raw = make([]unix.EpollEvent, len(evs))
	}
	raw := p.raw[:len(evs)]
	// A wait with a zero timeout never blocks: it is made raw (epoll_pwait
	// with no signal mask, the call every architecture has), without
	// x/sys's hand-off to the scheduler around it (see rawMax in package
	// netloop).
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(p.fd), uintptr(unsafe.Pointer(unsafe.SliceData(raw))), uintptr(len(raw)), 0, 0, 0)
	if e != 0 {
		if e == unix.EINTR {
			return 0, nil
		}
		return 0, os.NewSyscallError("epoll_wait", e)
	}
	n := int(r)
	for i := 0; i < n; i++ {
		evs[i] = Event{Fd: raw[i].Fd, Tag: uint32(raw[i].Pad), Flags: translate(raw[i].Events)}
	}
	return n, nil
}

// translate maps epoll bits onto Event flags. EPOLLERR and EPOLLHUP are
// reported whether or not they were asked for; both mean every direction
// must retry its syscall to learn what happened.
func translate(e uint32) uint32 {
	var f uint32
	if e&unix.EPOLLIN != 0 {
		f |= Readable
	}
	if e&unix.EPOLLPRI != 0 {
		f |= Urgent | Readable
	}
	if e&unix.EPOLLOUT != 0 {
		f |= Writable
	}
	if e&unix.EPOLLRDHUP != 0 {
		f |= ReadHup | Readable
	}
	if e&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		f |= Hup | Readable | Writable
	}
	return f
}

// Close closes the epoll descriptor. A loop that wrapped FD in an *os.File
// closes the file instead, never both.
func (p *Poller) Close() error { return unix.Close(p.fd) }
