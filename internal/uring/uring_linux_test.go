package uring

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

const opNop = 0 // IORING_OP_NOP

func setup(t *testing.T, entries uint32) *Ring {
	t.Helper()
	r, err := Setup(entries, &Params{})
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		t.Skipf("io_uring unavailable here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// Entries placed with Put past the tail and published together are
// submitted in order and reaped once each, also when the indices wrap
// around the rings many times.
func TestRingWrapsAround(t *testing.T) {
	r := setup(t, 4)
	if r.Entries != 4 {
		t.Fatalf("Entries = %d, want 4", r.Entries)
	}
	next := uint64(0)
	for round := range 40 {
		k := uint32(1 + round%3) // 1..3 entries per batch: the ring's indices drift through every slot
		for i := range k {
			r.Put(i, SQE{Opcode: opNop, UserData: next + uint64(i)})
		}
		r.Publish(int(k))
		n, _, e := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.FD), uintptr(k), uintptr(k), EnterGetEvents, 0, 0)
		if e != 0 || uint32(n) != k {
			t.Fatalf("round %d: io_uring_enter submitted %d of %d: %v", round, n, k, e)
		}
		var got []uint64
		r.Reap(func(c *CQE) {
			if c.Res != 0 {
				t.Errorf("round %d: NOP %d completed with %d", round, c.UserData, c.Res)
			}
			got = append(got, c.UserData)
		})
		if uint32(len(got)) != k {
			t.Fatalf("round %d: reaped %v, want %d completions", round, got, k)
		}
		for i, u := range got {
			if u != next+uint64(i) {
				t.Fatalf("round %d: reaped %v, want %d.. in order", round, got, next)
			}
		}
		next += uint64(k)
		r.Reap(func(c *CQE) { t.Fatalf("round %d: completion %d reaped twice", round, c.UserData) })
	}
}

// Publish with a negative count withdraws entries the kernel did not
// take: the next batch is placed where they were.
func TestPublishWithdraws(t *testing.T) {
	r := setup(t, 4)
	r.Put(0, SQE{Opcode: opNop, UserData: 1})
	r.Put(1, SQE{Opcode: opNop, UserData: 2})
	r.Publish(2)
	r.Publish(-2) // as after a submission that consumed none
	r.Put(0, SQE{Opcode: opNop, UserData: 3})
	r.Publish(1)
	if _, _, e := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.FD), 1, 1, EnterGetEvents, 0, 0); e != 0 {
		t.Fatal(e)
	}
	var got []uint64
	r.Reap(func(c *CQE) { got = append(got, c.UserData) })
	if len(got) != 1 || got[0] != 3 {
		t.Fatalf("reaped %v, want [3]: the withdrawn entries must not be submitted", got)
	}
}

func TestCloseTwice(t *testing.T) {
	r := setup(t, 2)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if r.FD != -1 || r.SQTail != nil || r.CQEs != nil {
		t.Fatal("Close left the descriptor or the queues in place")
	}
}
