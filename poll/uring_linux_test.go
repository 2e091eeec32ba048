package poll

import (
	"bytes"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func openRing(t *testing.T, n uint32) *Ring {
	t.Helper()
	r, err := OpenRing(n)
	if err != nil {
		t.Skipf("no batched sends here: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// streamPair returns a connected pair of non-blocking unix stream sockets
// (TCP goes through batches in the root package's tests).
func streamPair(t *testing.T) (a, b int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

// readAll reads what is queued on fd, up to max bytes, waiting for at
// most a few seconds for it to arrive.
func readAll(t *testing.T, fd, want int) []byte {
	t.Helper()
	var got []byte
	buf := make([]byte, 64<<10)
	for tries := 0; len(got) < want && tries < 5000; tries++ {
		n, err := unix.Read(fd, buf)
		if n > 0 {
			got = append(got, buf[:n]...)
			continue
		}
		if err != unix.EAGAIN {
			t.Fatalf("read: %d %v", n, err)
		}
		unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 1)
	}
	return got
}

// One Send: sends on several sockets, each with its own bytes and result,
// and each peer gets exactly its bytes.
func TestRingSendDelivers(t *testing.T) {
	r := openRing(t, 8)
	var ops []Op
	var peers []int
	for i := range 6 {
		a, b := streamPair(t)
		ops = append(ops, Op{FD: a, P: bytes.Repeat([]byte{byte('a' + i)}, 1+i*1000)})
		peers = append(peers, b)
	}
	for round := range 3 {
		for i := range ops {
			ops[i].N, ops[i].Err = -7, 7 // results must be written
		}
		if err := r.Do(ops); err != nil {
			t.Fatal(err)
		}
		for i, op := range ops {
			if op.Err != 0 || op.N != len(op.P) {
				t.Fatalf("round %d op %d: N=%d Err=%v, want %d", round, i, op.N, op.Err, len(op.P))
			}
			if got := readAll(t, peers[i], len(op.P)); !bytes.Equal(got, op.P) {
				t.Fatalf("round %d peer %d got %d bytes %.10q, want %d of %q", round, i, len(got), got, len(op.P), op.P[0])
			}
		}
	}
}

// The sends of a batch are independent: a full socket buffer gives EAGAIN,
// a small one a short count, a hung-up peer EPIPE, a bad descriptor EBADF,
// and the others in the same batch still succeed. Nothing is left in
// flight: every result is there when Send returns.
func TestRingSendErrors(t *testing.T) {
	r := openRing(t, 8)
	full, _ := streamPair(t)
	for {
		if _, err := unix.Write(full, make([]byte, 64<<10)); err != nil {
			break
		}
	}
	small, smallPeer := streamPair(t)
	unix.SetsockoptInt(small, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
	unix.SetsockoptInt(smallPeer, unix.SOL_SOCKET, unix.SO_RCVBUF, 4096)
	hup, hupPeer := streamPair(t)
	unix.Shutdown(hupPeer, unix.SHUT_RD)
	unix.Shutdown(hup, unix.SHUT_WR)
	ok, okPeer := streamPair(t)
	big := make([]byte, 8<<20)
	ops := []Op{
		{FD: full, P: []byte("x")},
		{FD: small, P: big},
		{FD: hup, P: []byte("y")},
		{FD: -1, P: []byte("z")},
		{FD: ok, P: []byte("still fine")},
	}
	if err := r.Do(ops); err != nil {
		t.Fatal(err)
	}
	if ops[0].N != 0 || ops[0].Err != unix.EAGAIN {
		t.Errorf("full buffer: N=%d Err=%v, want EAGAIN", ops[0].N, ops[0].Err)
	}
	if ops[1].Err != 0 || ops[1].N <= 0 || ops[1].N >= len(big) {
		t.Errorf("small buffer: N=%d Err=%v, want a short count", ops[1].N, ops[1].Err)
	}
	if ops[2].N != 0 || ops[2].Err != unix.EPIPE {
		t.Errorf("after shutdown: N=%d Err=%v, want EPIPE", ops[2].N, ops[2].Err)
	}
	if ops[3].N != 0 || ops[3].Err != unix.EBADF {
		t.Errorf("bad descriptor: N=%d Err=%v, want EBADF", ops[3].N, ops[3].Err)
	}
	if ops[4].Err != 0 || ops[4].N != len(ops[4].P) {
		t.Errorf("beside them: N=%d Err=%v", ops[4].N, ops[4].Err)
	}
	if got := readAll(t, okPeer, 10); string(got) != "still fine" {
		t.Errorf("peer got %q", got)
	}
}

// A batch of the ring's full size, several times over (the queues wrap).
func TestRingSendFull(t *testing.T) {
	r := openRing(t, 4)
	n := r.Entries()
	src, dst := make([]int, n), make([]int, n)
	for i := range n {
		src[i], dst[i] = streamPair(t)
	}
	ops := make([]Op, n)
	for round := range 5 {
		for i := range ops {
			ops[i] = Op{FD: src[i], P: []byte{byte(round), byte(i)}}
		}
		if err := r.Do(ops); err != nil {
			t.Fatal(err)
		}
		for i, op := range ops {
			if op.N != 2 || op.Err != 0 {
				t.Fatalf("round %d op %d: %d %v", round, i, op.N, op.Err)
			}
			if got := readAll(t, dst[i], 2); !bytes.Equal(got, op.P) {
				t.Fatalf("round %d peer %d got %v, want %v", round, i, got, op.P)
			}
		}
	}
}

// Ops the kernel leaves in flight (here: receives without MSG_DONTWAIT on
// empty sockets, which wait for data) are cancelled before Do returns and
// reported as not made; they take no bytes that arrive afterwards, and a
// send beside them completes as usual.
func TestRingCancelsInFlight(t *testing.T) {
	r := openRing(t, 8)
	r.msgFlags = unix.MSG_NOSIGNAL
	a, aPeer := streamPair(t)
	b, bPeer := streamPair(t)
	c, cPeer := streamPair(t)
	ops := []Op{
		{FD: a, P: make([]byte, 16), Recv: true},
		{FD: b, P: []byte("sent")},
		{FD: c, P: make([]byte, 16), Recv: true},
	}
	done := make(chan error, 1)
	go func() { done <- r.Do(ops) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Do waited for receives that had nothing to receive")
	}
	for _, i := range []int{0, 2} {
		if ops[i].N != -1 || ops[i].Err != 0 {
			t.Errorf("op %d: N=%d Err=%v, want -1 (cancelled: not made)", i, ops[i].N, ops[i].Err)
		}
	}
	if ops[1].N != 4 || ops[1].Err != 0 {
		t.Errorf("send beside them: N=%d Err=%v", ops[1].N, ops[1].Err)
	}
	unix.Write(aPeer, []byte("after"))
	unix.Write(cPeer, []byte("later"))
	if got := readAll(t, a, 5); string(got) != "after" {
		t.Errorf("a cancelled receive took %q's bytes", got)
	}
	if got := readAll(t, c, 5); string(got) != "later" {
		t.Errorf("a cancelled receive took %q's bytes", got)
	}
	if got := readAll(t, bPeer, 4); string(got) != "sent" {
		t.Errorf("peer got %q", got)
	}
}

// A send through the ring to a socket whose peer has gone fails with
// EPIPE, as write(2) does, but raises no SIGPIPE (io_uring adds
// MSG_NOSIGNAL to every send), where write(2) raises one: the one
// difference batched writes make from package net, which only a program
// that asks for SIGPIPE with signal.Notify can see (README, "What
// differs").
func TestRingSendNoSigpipe(t *testing.T) {
	r := openRing(t, 4)
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGPIPE)
	defer signal.Stop(sig)
	a, b := streamPair(t)
	unix.Shutdown(b, unix.SHUT_RD)
	ops := []Op{{FD: a, P: []byte("x")}}
	if err := r.Do(ops); err != nil || ops[0].Err != unix.EPIPE {
		t.Fatalf("send to a gone peer: %v, N=%d Err=%v; want EPIPE", err, ops[0].N, ops[0].Err)
	}
	select {
	case <-sig:
		t.Fatal("a send through the ring raised SIGPIPE")
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := unix.Write(a, []byte("x")); err != unix.EPIPE {
		t.Fatalf("write(2) to a gone peer: %v, want EPIPE", err)
	}
	select {
	case <-sig:
	case <-time.After(5 * time.Second):
		t.Fatal("write(2) raised no SIGPIPE: the difference this test documents is gone")
	}
}
