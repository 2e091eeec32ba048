// Package bufpool lends byte buffers from github.com/valyala/bytebufferpool
// for netloop's read coalescing, and counts how many are out.
//
// Ownership: a *Buf returned by Get belongs to its caller alone until that
// caller passes it to Put, exactly once; nothing may touch it afterwards
// (in particular no syscall may still be writing into it).
//
// Only netloop's root package imports it; it is an implementation detail
// and may change in any release.
package bufpool

import (
	"sync/atomic"

	"github.com/valyala/bytebufferpool"
)

// Buf is a pooled buffer; B is its memory.
type Buf = bytebufferpool.ByteBuffer

// Size is the length of every buffer handed out: large enough for a TLS
// record (16 KiB of payload plus its header) in one read.
const Size = 16<<10 + 512

var (
	pool bytebufferpool.Pool
	out  atomic.Int64 // buffers handed out and not yet returned
)

// Get returns a buffer whose B has length Size.
func Get() *Buf {
	b := pool.Get()
	if cap(b.B) < Size {
		b.B = make([]byte, Size)
	}
	b.B = b.B[:Size]
	out.Add(1)
	return b
}

// Put returns b to the pool. The caller gives up b.
func Put(b *Buf) {
	b.B = b.B[:cap(b.B)]
	out.Add(-1)
	pool.Put(b)
}

// InUse reports how many buffers are handed out and not yet returned.
func InUse() int64 { return out.Load() }
