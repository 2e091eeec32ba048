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
				s, _ = pipe(t, ln)
				out = append(out, "server CloseRead: "+errShape(s.(halfCloser).CloseRead()))
				n, err := s.Read(make([]byte, 4))
				out = append(out, fmt.Sprintf("read after CloseRead n=%d %s", n, errShape(err)))
				return strings.Join(out, "\n")
			})
		})
	}
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
