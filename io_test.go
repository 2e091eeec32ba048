package netloop_test

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// slowReader reads r in small pieces with pauses, hashing what it reads.
func slowRead(r io.Reader, pause time.Duration) ([32]byte, int64, error) {
	h := sha256.New()
	buf := make([]byte, 7919) // odd size: no alignment with the writer
	var total int64
	for i := 0; ; i++ {
		n, err := r.Read(buf)
		h.Write(buf[:n])
		total += int64(n)
		if err == io.EOF {
			var sum [32]byte
			copy(sum[:], h.Sum(nil))
			return sum, total, nil
		}
		if err != nil {
			return [32]byte{}, total, err
		}
		if i%64 == 0 {
			time.Sleep(pause)
		}
	}
}

func TestLargeWriteSlowReader(t *testing.T) {
	const size = 8 << 20
	data := make([]byte, size)
	rand.New(rand.NewSource(1)).Read(data)
	want := sha256.Sum256(data)
	for _, network := range networks(t) {
		for _, dir := range []string{"server-writes", "client-writes"} {
			t.Run(network+"/"+dir, func(t *testing.T) {
				forEach(t, func(t *testing.T, im impl) {
					defer watchdog(t, 60*time.Second, "large write")()
					ln := listen(t, im, network)
					s, c := pipe(t, ln)
					w, r := s, c
					if dir == "client-writes" {
						w, r = c, s
					}
					errc := make(chan error, 1)
					go func() {
						n, err := w.Write(data)
						if err == nil && n != size {
							err = fmt.Errorf("short write %d", n)
						}
						if err == nil {
							err = w.(interface{ CloseWrite() error }).CloseWrite()
						}
						errc <- err
					}()
					sum, n, err := slowRead(r, time.Millisecond)
					if err != nil {
						t.Fatal(err)
					}
					if werr := <-errc; werr != nil {
						t.Fatal(werr)
					}
					if n != size || sum != want {
						t.Fatalf("read %d bytes, checksum match %v", n, sum == want)
					}
				})
			})
		}
	}
}

func TestHalfClose(t *testing.T) {
	for _, network := range networks(t) {
		t.Run(network, func(t *testing.T) {
			differential(t, func(t *testing.T, im impl) string {
				defer watchdog(t, 10*time.Second, "half close")()
				ln := listen(t, im, network)
				type halfCloser interface {
					net.Conn
					CloseRead() error
					CloseWrite() error
				}
				var out []string
				// The client finishes sending; the server reads to EOF and
				// still answers.
				s, c := pipe(t, ln)
				c.Write([]byte("request"))
				c.(halfCloser).CloseWrite()
				got, err := io.ReadAll(s)
				out = append(out, fmt.Sprintf("server read %q %s", got, errShape(err)))
				_, err = s.Write([]byte("response"))
				out = append(out, "server write after peer's CloseWrite: "+errShape(err))
				s.Close()
				got, err = io.ReadAll(c)
				out = append(out, fmt.Sprintf("client read %q %s", got, errShape(err)))

				// The server finishes sending first; the client still sends.
				s, c = pipe(t, ln)
				s.Write([]byte("greeting"))
				out = append(out, "server CloseWrite: "+errShape(s.(halfCloser).CloseWrite()))
				got, err = io.ReadAll(c)
				out = append(out, fmt.Sprintf("client read %q %s", got, errShape(err)))
				_, err = s.Write([]byte("x"))
				out = append(out, "server write after own CloseWrite: "+errShape(err))
				c.Write([]byte("still talking"))
				c.Close()
				got, err = io.ReadAll(s)
				out = append(out, fmt.Sprintf("server read %q %s", got, errShape(err)))

				// CloseRead: the server's reads end.
				s, c = pipe(t, ln)
				out = append(out, "server CloseRead: "+errShape(s.(halfCloser).CloseRead()))
				n, err := s.Read(make([]byte, 4))
				out = append(out, fmt.Sprintf("read after CloseRead n=%d %s", n, errShape(err)))
				return strings.Join(out, "\n")
			})
		})
	}
}

// sockopt reads an integer socket option through SyscallConn.
func sockopt(t *testing.T, c net.Conn, level, name int) int {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), level, name) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

func TestSocketOptions(t *testing.T) {
	differential(t, func(t *testing.T, im impl) string {
		ln := listen(t, im, "tcp4")
		s, _ := pipe(t, ln)
		var out []string
		opt := func(what string, level, name int) {
			out = append(out, fmt.Sprintf("%s=%d", what, sockopt(t, s, level, name)))
		}
		opt("nodelay", syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
		opt("keepalive", syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		opt("keepidle", syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
		opt("keepintvl", syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL)
		opt("keepcnt", syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT)
		opt("listener reuseaddr", syscall.SOL_SOCKET, syscall.SO_REUSEADDR)
		type tcpLike interface {
			SetNoDelay(bool) error
			SetKeepAlive(bool) error
			SetKeepAlivePeriod(time.Duration) error
			SetKeepAliveConfig(net.KeepAliveConfig) error
			SetLinger(int) error
			SetReadBuffer(int) error
			SetWriteBuffer(int) error
		}
		tc := s.(tcpLike)
		out = append(out, "SetNoDelay(false): "+errShape(tc.SetNoDelay(false)))
		opt("nodelay", syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
		out = append(out, "SetKeepAlivePeriod(42s): "+errShape(tc.SetKeepAlivePeriod(42*time.Second)))
		opt("keepidle", syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
		out = append(out, "SetKeepAliveConfig: "+errShape(tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 1500 * time.Millisecond, Count: 3})))
		opt("keepidle", syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
		opt("keepintvl", syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL)
		opt("keepcnt", syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT)
		out = append(out, "SetKeepAlive(false): "+errShape(tc.SetKeepAlive(false)))
		opt("keepalive", syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		out = append(out, "SetLinger(0): "+errShape(tc.SetLinger(0)))
		out = append(out, "SetReadBuffer: "+errShape(tc.SetReadBuffer(64<<10)))
		opt("rcvbuf", syscall.SOL_SOCKET, syscall.SO_RCVBUF)
		out = append(out, "SetWriteBuffer: "+errShape(tc.SetWriteBuffer(64<<10)))
		opt("sndbuf", syscall.SOL_SOCKET, syscall.SO_SNDBUF)
		out = append(out, "SetReadBuffer(-1): "+errShape(tc.SetReadBuffer(-1)))
		return strings.Join(out, "\n")
	})
}

func TestListenConfigKeepAlive(t *testing.T) {
	// Negative KeepAlive disables keep-alives on accepted connections.
	differential(t, func(t *testing.T, im impl) string {
		lc := struct{ net.ListenConfig }{}
		_ = lc
		var ln net.Listener
		var err error
		if im.name == "net" {
			ln, err = (&net.ListenConfig{KeepAlive: -1}).Listen(t.Context(), "tcp4", "127.0.0.1:0")
		} else {
			ln, err = netloopListenConfig(-1, net.KeepAliveConfig{}).Listen(t.Context(), "tcp4", "127.0.0.1:0")
		}
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		s, _ := pipe(t, ln)
		out := fmt.Sprintf("keepalive=%d", sockopt(t, s, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE))
		if im.name == "net" {
			ln2, err := (&net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 7 * time.Second, Count: 4}}).Listen(t.Context(), "tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln2.Close()
			ln = ln2
		} else {
			ln2, err := netloopListenConfig(0, net.KeepAliveConfig{Enable: true, Idle: 7 * time.Second, Count: 4}).Listen(t.Context(), "tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln2.Close()
			ln = ln2
		}
		s, _ = pipe(t, ln)
		out += fmt.Sprintf(" keepidle=%d keepcnt=%d keepintvl=%d", sockopt(t, s, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE),
			sockopt(t, s, syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT), sockopt(t, s, syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL))
		return out
	})
}

func TestReadFromWriteTo(t *testing.T) {
	const size = 3<<20 + 17
	data := make([]byte, size)
	rand.New(rand.NewSource(2)).Read(data)
	want := sha256.Sum256(data)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, network := range networks(t) {
		t.Run(network, func(t *testing.T) {
			differential(t, func(t *testing.T, im impl) string {
				defer watchdog(t, 30*time.Second, "readfrom")()
				ln := listen(t, im, network)
				s, c := pipe(t, ln)
				var out []string
				// ReadFrom a file (sendfile where possible), then a plain
				// reader, then a LimitedReader of a file.
				f, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				done := make(chan string, 1)
				go func() {
					sum, n, err := slowRead(c, 0)
					done <- fmt.Sprintf("client got %d bytes, checksum ok %v, %s", n, sum == sha256.Sum256(append(append(append([]byte(nil), data...), data[:1000]...), data[:12345]...)), errShape(err))
				}()
				n, err := io.Copy(s, f) // uses s.ReadFrom where s has it
				out = append(out, fmt.Sprintf("copy from file: %d %s", n, errShape(err)))
				n, err = io.Copy(s, strings.NewReader(string(data[:1000])))
				out = append(out, fmt.Sprintf("copy from reader: %d %s", n, errShape(err)))
				f.Seek(0, io.SeekStart)
				n, err = io.Copy(s, io.LimitReader(f, 12345))
				out = append(out, fmt.Sprintf("copy from limited file: %d %s", n, errShape(err)))
				s.(interface{ CloseWrite() error }).CloseWrite()
				out = append(out, <-done)

				// WriteTo: copy the connection into a file.
				s2, c2 := pipe(t, ln)
				go func() { c2.Write(data); c2.Close() }()
				var h = sha256.New()
				n, err = io.Copy(h, s2)
				var sum [32]byte
				copy(sum[:], h.Sum(nil))
				out = append(out, fmt.Sprintf("copy to writer: %d %s checksum ok %v", n, errShape(err), sum == want))
				return strings.Join(out, "\n")
			})
		})
	}
}

func TestFileAndSyscallConn(t *testing.T) {
	differential(t, func(t *testing.T, im impl) string {
		ln := listen(t, im, "tcp4")
		s, c := pipe(t, ln)
		var out []string
		f, err := s.(interface{ File() (*os.File, error) }).File()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, "file name shape: "+normalize(f.Name(), s.LocalAddr().String(), "L", s.RemoteAddr().String(), "R"))
		// The duplicate is independent: write through it, close it, and the
		// original keeps working.
		if _, err := f.Write([]byte("via file ")); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if _, err := s.Write([]byte("via conn")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 17)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadFull(c, buf)
		out = append(out, fmt.Sprintf("peer read %q %s", buf, errShape(err)))

		// RawConn.Read waits for readiness between calls.
		rc, err := s.(syscall.Conn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		go func() { time.Sleep(30 * time.Millisecond); c.Write([]byte("raw")) }()
		var got []byte
		calls := 0
		err = rc.Read(func(fd uintptr) bool {
			calls++
			b := make([]byte, 16)
			n, err := syscall.Read(int(fd), b)
			if err == syscall.EAGAIN {
				return false
			}
			got = append(got, b[:max(n, 0)]...)
			return true
		})
		out = append(out, fmt.Sprintf("raw read %q %s, called more than once %v", got, errShape(err), calls > 1))
		err = rc.Write(func(fd uintptr) bool {
			_, err := syscall.Write(int(fd), []byte("!"))
			return err != syscall.EAGAIN
		})
		out = append(out, "raw write: "+errShape(err))

		lf, err := ln.(interface{ File() (*os.File, error) }).File()
		out = append(out, "listener file: "+errShape(err))
		if lf != nil {
			out = append(out, "listener file name: "+normalize(lf.Name(), ln.Addr().String(), "L"))
			lf.Close()
		}
		lrc, err := ln.(syscall.Conn).SyscallConn()
		out = append(out, "listener syscallconn: "+errShape(err))
		out = append(out, "listener raw control: "+errShape(lrc.Control(func(uintptr) {})))
		out = append(out, "listener raw read: "+errShape(lrc.Read(func(uintptr) bool { return true })))
		return strings.Join(out, "\n")
	})
}
