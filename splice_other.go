//go:build !linux || netloop_stdnet

package netloop

import "io"

// spliceFrom and spliceTo are Linux-only, as in package net; elsewhere (and on the
// package-net backend, whose own ReadFrom splices) it does nothing.
func (c *Conn) spliceFrom(io.Reader) (int64, error, bool) { return 0, nil, false }

func (c *Conn) spliceTo(io.Writer) (int64, error, bool) { return 0, nil, false }

func splicedBytesCount() uint64 { return 0 }
