package poll

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestEpollTranslation(t *testing.T) {
	cases := []struct {
		name string
		ev   uint32
		want uint32
	}{
		{name: "in", ev: unix.EPOLLIN, want: Readable},
		{name: "urgent data", ev: unix.EPOLLIN | unix.EPOLLPRI, want: Readable | Urgent},
		{name: "out", ev: unix.EPOLLOUT, want: Writable},
		{name: "data and FIN in one edge", ev: unix.EPOLLIN | unix.EPOLLRDHUP, want: Readable | ReadHup},
		{name: "rdhup alone", ev: unix.EPOLLRDHUP, want: Readable | ReadHup},
		{name: "hup", ev: unix.EPOLLHUP, want: Readable | Writable | Hup},
		{name: "err", ev: unix.EPOLLERR, want: Readable | Writable | Hup},
		{name: "reset", ev: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLHUP | unix.EPOLLERR, want: Readable | Writable | ReadHup | Hup},
	}
	for _, tc := range cases {
		if got := translate(tc.ev); got != tc.want {
			t.Errorf("%s: translate(%#x) = %04b, want %04b", tc.name, tc.ev, got, tc.want)
		}
	}
}

// Edge-triggered registration reports data followed by FIN, and the
// generation tag travels with the event.
func TestEpollEdges(t *testing.T) {
	p, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	if err := p.Add(fds[0], 0xdeadbeef); err != nil {
		t.Fatal(err)
	}
	evs := make([]Event, 8)
	n, _ := p.Wait(evs)
	if n != 1 || evs[0].Flags != Writable || evs[0].Tag != 0xdeadbeef || int(evs[0].Fd) != fds[0] {
		t.Fatalf("initial: %d %+v", n, evs[:n])
	}
	if n, _ := p.Wait(evs); n != 0 {
		t.Fatalf("edge repeated: %+v", evs[:n])
	}
	unix.Write(fds[1], []byte("data"))
	unix.Close(fds[1])
	n, _ = p.Wait(evs)
	if n != 1 || evs[0].Flags&(Readable|ReadHup) != Readable|ReadHup {
		t.Fatalf("data+FIN: %d %+v", n, evs[:n])
	}
	if err := p.Del(fds[0]); err != nil {
		t.Fatal(err)
	}
}
