//go:build (darwin || dragonfly || freebsd) && !netloop_stdnet

package netloop

import (
	"io"

	"golang.org/x/sys/unix"
)

const haveSendfile = true

// sysSendfile sends up to n bytes from src's current position to dst and
// advances that position. The BSDs' sendfile takes an explicit offset and
// leaves the file position alone, so the position is read before and moved
// after, as internal/poll does.
func sysSendfile(dst, src, n int) (int, error) {
	pos, err := unix.Seek(src, 0, io.SeekCurrent)
	if err != nil {
		return 0, unix.EINVAL // not seekable: let io.Copy handle it
	}
	start := pos
	written, err := unix.Sendfile(dst, src, &pos, n)
	if written > 0 {
		unix.Seek(src, start+int64(written), io.SeekStart)
	}
	return written, err
}
