package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// h2Server serves three paths over HTTP/2 and counts what it served.
type h2Server struct {
	url string

	requests atomic.Int64 // every request
	notH2    atomic.Int64 // requests that did not arrive over HTTP/2
	uploaded atomic.Int64 // request body bytes read by /upload
	badBody  atomic.Int64 // /upload bodies of the wrong length
}

const (
	h2BigSize    = 64 << 10 // response body of /big
	h2UploadSize = 16 << 10 // request body h2load sends to /upload
)

var bigBody = bytes.Repeat([]byte("netloop h2load "), h2BigSize/15+1)[:h2BigSize]

// startH2 starts an http.Server on a listener of the given backend, with
// TLS (ALPN h2) or as h2c (unencrypted HTTP/2 with prior knowledge).
func startH2(t *testing.T, backend string, fn listenFunc, useTLS bool) *h2Server {
	ln := listen(t, backend, fn, "tcp")
	s := &h2Server{}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.count(r)
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		s.count(r)
		w.Write(bigBody)
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		s.count(r)
		n, err := io.Copy(io.Discard, r.Body)
		s.uploaded.Add(n)
		if err != nil || n != h2UploadSize {
			s.badBody.Add(1)
		}
		fmt.Fprintf(w, "%d\n", n)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	if useTLS {
		srv.TLSConfig = serverTLS()
		s.url = "https://" + ln.Addr().String()
		go func() { served <- srv.ServeTLS(ln, "", "") }()
	} else {
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
		s.url = "http://" + ln.Addr().String()
		go func() { served <- srv.Serve(ln) }()
	}
	t.Cleanup(func() {
		defer watchdog(t, 30*time.Second, "h2 server shutdown")()
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

func (s *h2Server) count(r *http.Request) {
	s.requests.Add(1)
	if r.ProtoMajor != 2 {
		s.notH2.Add(1)
	}
}

var (
	h2loadRequests = regexp.MustCompile(`requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	h2loadStatus   = regexp.MustCompile(`status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
	h2loadProto    = regexp.MustCompile(`Application protocol: (\S+)`)
	h2loadFinished = regexp.MustCompile(`finished in .*`)
)

// TestH2load drives HTTP/2 servers on both backends with nghttp2's h2load,
// over TLS and h2c: small responses, 64 KiB responses and 16 KiB uploads,
// many streams per connection. Every request must succeed with a 2xx, and
// the server must have served exactly those requests, all over HTTP/2.
func TestH2load(t *testing.T) {
	h2load, err := exec.LookPath("h2load")
	if err != nil {
		t.Skip("h2load not on PATH (Debian/Ubuntu package nghttp2-client)")
	}
	upload := filepath.Join(t.TempDir(), "upload")
	if err := os.WriteFile(upload, bytes.Repeat([]byte{'u'}, h2UploadSize), 0o644); err != nil {
		t.Fatal(err)
	}
	scenarios := []struct {
		name, path string
		n, c, m    int
		args       []string
	}{
		{"small", "/", 20000, 20, 10, nil},
		{"big", "/big", 2000, 10, 4, nil},
		{"upload", "/upload", 2000, 10, 4, []string{"-d", upload}},
	}
	for _, b := range backends {
		for _, useTLS := range []bool{true, false} {
			proto := "h2c"
			if useTLS {
				proto = "h2"
			}
			for _, sc := range scenarios {
				t.Run(b.name+"/"+proto+"/"+sc.name, func(t *testing.T) {
					defer watchdog(t, 2*time.Minute, "h2load")()
					s := startH2(t, b.name, b.listen, useTLS)
					ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
					defer cancel()
					args := append([]string{
						"-n", strconv.Itoa(sc.n), "-c", strconv.Itoa(sc.c), "-m", strconv.Itoa(sc.m),
					}, sc.args...)
					cmd := exec.CommandContext(ctx, h2load, append(args, s.url+sc.path)...)
					cmd.WaitDelay = 5 * time.Second
					out, err := cmd.CombinedOutput()
					if err != nil {
						t.Fatalf("h2load %v: %v\n%s", args, err, out)
					}
					t.Logf("h2load %v %s: %s; %s; %s", args, s.url+sc.path,
						h2loadFinished.Find(out), h2loadRequests.Find(out), h2loadStatus.Find(out))

					if m := h2loadProto.FindSubmatch(out); m == nil || string(m[1]) != proto {
						t.Errorf("h2load negotiated %q, want %s\n%s", m, proto, out)
					}
					req := h2loadRequests.FindSubmatch(out)
					st := h2loadStatus.FindSubmatch(out)
					if req == nil || st == nil {
						t.Fatalf("cannot parse h2load output:\n%s", out)
					}
					n := strconv.Itoa(sc.n)
					want := []string{n, n, n, n, "0", "0", "0"} // total started done succeeded failed errored timeout
					for i, w := range want {
						if string(req[i+1]) != w {
							t.Errorf("h2load: %s; want %d done and succeeded, 0 failed, errored and timed out", req[0], sc.n)
							break
						}
					}
					if string(st[1]) != n {
						t.Errorf("h2load: %s; want %d 2xx", st[0], sc.n)
					}
					if got := s.requests.Load(); got != int64(sc.n) {
						t.Errorf("server served %d requests, want %d", got, sc.n)
					}
					if got := s.notH2.Load(); got != 0 {
						t.Errorf("server served %d requests not over HTTP/2", got)
					}
					if sc.path == "/upload" {
						if got, want := s.uploaded.Load(), int64(sc.n*h2UploadSize); got != want || s.badBody.Load() != 0 {
							t.Errorf("server read %d upload bytes (%d bad bodies), want %d", got, s.badBody.Load(), want)
						}
					}
					if t.Failed() {
						t.Logf("h2load output:\n%s", out)
					}
				})
			}
		}
	}
}
