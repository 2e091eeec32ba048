package netloop

import (
	"net"
)

// Op names used in *net.OpError, as package net spells them.
const (
	opAccept   = "accept"
	opRead     = "read"
	opWrite    = "write"
	opClose    = "close"
	opSet      = "set"
	opFile     = "file"
	opReadFrom = "readfrom"
	opWriteTo  = "writeto"
	opRawCtl   = "raw-control"
	opRawRead  = "raw-read"
	opRawWrite = "raw-write"
)

// opError wraps err as package net does: the operation, the network, the
// source and target addresses. err is already net.ErrClosed,
// os.ErrDeadlineExceeded or an *os.SyscallError.
func opError(op, network string, source, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: network, Source: source, Addr: addr, Err: err}
}
