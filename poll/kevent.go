package poll

// kevFlags translates one kqueue record into Event flags. It is kept free
// of x/sys/unix types (whose field types and filter values differ between
// the BSDs) so that it builds, and is tested, on every OS; kqueue.go maps
// a unix.Kevent_t onto its arguments.
//
//	write: the record's filter is EVFILT_WRITE (else EVFILT_READ)
//	eof:   EV_EOF is set. On EVFILT_READ the peer shut down its writing
//	       side: reads drain the buffer and then see EOF (fflags holds a
//	       socket error if the connection failed). On EVFILT_WRITE the peer
//	       can no longer receive: a write fails (EPIPE or the error).
//	fflags: with eof, the pending socket error (0 for an orderly FIN)
//	failed: EV_ERROR is set (a change-list error reported in the record)
//
// As with epoll, EV_EOF is reported once (EV_CLEAR) and the loop keeps it
// sticky; an error means every direction must retry its syscall.
func kevFlags(write, eof bool, fflags uint32, failed bool) uint32 {
	if failed {
		return Hup | Readable | Writable
	}
	var f uint32
	if write {
		f = Writable
		if eof {
			f |= Hup | Readable
		}
		return f
	}
	f = Readable
	if eof {
		f |= ReadHup
		if fflags != 0 {
			f |= Hup | Writable
		}
	}
	return f
}
