//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package loop

import (
	"sync"
	"sync/atomic"
)

// table maps a descriptor number to the Desc registered for it. The loops
// read it for every event without locks; Register and destroy write it.
//
// It is a two-level array: a copy-on-write directory of fixed-size chunks,
// grown under mu, so that a lookup is two atomic loads and a process with a
// million-descriptor limit does not pay for the slots it never uses.
type table struct {
	mu  sync.Mutex               // serialises growth
	dir atomic.Pointer[[]*chunk] // replaced, never mutated, when grown
}

const chunkBits = 10

type chunk [1 << chunkBits]atomic.Pointer[Desc]

func (t *table) slot(fd int, grow bool) *atomic.Pointer[Desc] {
	i, j := fd>>chunkBits, fd&(1<<chunkBits-1)
	if dp := t.dir.Load(); dp != nil && i < len(*dp) && (*dp)[i] != nil {
		return &(*dp)[i][j]
	}
	if !grow {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var old []*chunk
	if dp := t.dir.Load(); dp != nil {
		old = *dp
	}
	if i < len(old) && old[i] != nil {
		return &old[i][j]
	}
	n := len(old)
	if i >= n {
		n = max(2*n, i+1)
	}
	dir := make([]*chunk, n)
	copy(dir, old)
	dir[i] = new(chunk)
	t.dir.Store(&dir)
	return &dir[i][j]
}

// get returns the Desc registered for fd, or nil.
func (t *table) get(fd int) *Desc {
	if s := t.slot(fd, false); s != nil {
		return s.Load()
	}
	return nil
}

// put records d for its descriptor, replacing whatever a closed descriptor
// with the same number left there.
func (t *table) put(d *Desc) { t.slot(d.fd, true).Store(d) }

// remove clears the slot of d's descriptor if it still holds d.
func (t *table) remove(d *Desc) {
	if s := t.slot(d.fd, false); s != nil {
		s.CompareAndSwap(d, nil)
	}
}
