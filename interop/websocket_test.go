package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsServer is an http.Server whose handlers take over connections with
// net/http's Hijack (inside websocket.Accept). It records how each
// WebSocket ended, as seen by the server.
type wsServer struct {
	url    string // ws:// or wss://
	client *http.Client

	mu     sync.Mutex
	active int                    // handlers running
	closes []websocket.CloseError // how each connection ended, server side
	errs   []error                // anything else that ended a connection
}

const wsReadLimit = 2 << 20

func startWS(t *testing.T, backend string, fn listenFunc, useTLS bool) *wsServer {
	ln := listen(t, backend, fn, "tcp")
	s := &wsServer{client: &http.Client{Transport: &http.Transport{}}}
	mux := http.NewServeMux()
	// /echo echoes every message, streaming it frame by frame.
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		defer s.handler()()
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionContextTakeover})
		if err != nil {
			s.record(err)
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(wsReadLimit)
		for {
			if err := echo(r.Context(), c); err != nil {
				s.record(err)
				return
			}
		}
	})
	// /close reads one message, then closes with its own status.
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		defer s.handler()()
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			s.record(err)
			return
		}
		defer c.CloseNow()
		if _, _, err := c.Read(r.Context()); err != nil {
			s.record(err)
			return
		}
		s.record(c.Close(4001, "server says bye"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	if useTLS {
		srv.TLSConfig = serverTLS()
		s.client.Transport.(*http.Transport).TLSClientConfig = clientTLS()
		s.url = "wss://" + ln.Addr().String()
		go func() { served <- srv.ServeTLS(ln, "", "") }()
	} else {
		s.url = "ws://" + ln.Addr().String()
		go func() { served <- srv.Serve(ln) }()
	}
	t.Cleanup(func() {
		defer watchdog(t, 30*time.Second, "websocket server shutdown")()
		s.client.CloseIdleConnections()
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		s.wait(t) // hijacked: Shutdown does not wait for them
	})
	return s
}

func echo(ctx context.Context, c *websocket.Conn) error {
	typ, r, err := c.Reader(ctx)
	if err != nil {
		return err
	}
	w, err := c.Writer(ctx, typ)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		return err
	}
	return w.Close()
}

// handler counts a running handler until the returned function is called.
func (s *wsServer) handler() (done func()) {
	s.mu.Lock()
	s.active++
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.active--
		s.mu.Unlock()
	}
}

// record notes how a server-side connection ended: a close status from the
// peer, or an error.
func (s *wsServer) record(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		s.closes = append(s.closes, ce)
	} else if err != nil {
		s.errs = append(s.errs, err)
	}
}

// wait waits for every handler to return and reports how they ended.
func (s *wsServer) wait(t *testing.T) ([]websocket.CloseError, []error) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		s.mu.Lock()
		if s.active == 0 {
			defer s.mu.Unlock()
			return s.closes, s.errs
		}
		s.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("websocket handlers did not return")
		}
	}
}

func (s *wsServer) dial(ctx context.Context, path string, compress bool) (*websocket.Conn, error) {
	opts := &websocket.DialOptions{HTTPClient: s.client}
	if compress {
		opts.CompressionMode = websocket.CompressionContextTakeover
	}
	c, _, err := websocket.Dial(ctx, s.url+path, opts)
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(wsReadLimit)
	return c, nil
}

// payload returns n bytes: printable ASCII for a text message, anything
// for a binary one.
func payload(rng *rand.Rand, typ websocket.MessageType, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		if typ == websocket.MessageText {
			p[i] = byte(' ' + rng.IntN(95))
		} else {
			p[i] = byte(rng.Uint32())
		}
	}
	return p
}

// roundTrip sends p as one message of type typ, in frames of at most chunk
// bytes if chunk > 0, and checks that the echo is identical.
func roundTrip(ctx context.Context, c *websocket.Conn, typ websocket.MessageType, p []byte, chunk int) error {
	if chunk <= 0 {
		if err := c.Write(ctx, typ, p); err != nil {
			return fmt.Errorf("write %d bytes: %w", len(p), err)
		}
	} else {
		w, err := c.Writer(ctx, typ)
		if err != nil {
			return err
		}
		for rest := p; len(rest) > 0; {
			n := min(chunk, len(rest))
			if _, err := w.Write(rest[:n]); err != nil {
				return fmt.Errorf("write frame: %w", err)
			}
			rest = rest[n:]
		}
		if err := w.Close(); err != nil {
			return err
		}
	}
	gotTyp, got, err := c.Read(ctx)
	if err != nil {
		return fmt.Errorf("read echo of %d bytes: %w", len(p), err)
	}
	if gotTyp != typ || !bytes.Equal(got, p) {
		return fmt.Errorf("echo of %v %d bytes: got %v %d bytes (equal=%v)", typ, len(p), gotTyp, len(got), bytes.Equal(got, p))
	}
	return nil
}

// closeClean runs the close handshake from the client and checks its result.
func closeClean(c *websocket.Conn, reason string) error {
	if err := c.Close(websocket.StatusNormalClosure, reason); err != nil {
		return fmt.Errorf("close handshake: %w", err)
	}
	return nil
}

// checkCloses requires that the server saw exactly want normal closures
// with the given reason, and nothing else.
func checkCloses(t *testing.T, s *wsServer, want int, reason string) {
	t.Helper()
	closes, errs := s.wait(t)
	for _, err := range errs {
		t.Errorf("server side: %v", err)
	}
	if len(closes) != want {
		t.Errorf("server saw %d close frames, want %d", len(closes), want)
	}
	for _, ce := range closes {
		if ce.Code != websocket.StatusNormalClosure || ce.Reason != reason {
			t.Errorf("server saw close %d %q, want %d %q", ce.Code, ce.Reason, websocket.StatusNormalClosure, reason)
		}
	}
}

var wsSizes = []int{1, 2, 125, 126, 127, 1000, 4095, 4096, 4097, 65535, 65536, 65537, 200_000, 1 << 20}

// TestWebSocketEcho echoes text and binary messages of 1 byte to 1 MiB,
// around each frame-length and buffer boundary, whole and in many frames,
// with and without permessage-deflate, over ws:// and wss://; then the
// client closes and the server must see its status and reason.
func TestWebSocketEcho(t *testing.T) {
	for _, b := range backends {
		for _, useTLS := range []bool{false, true} {
			for _, compress := range []bool{false, true} {
				name := fmt.Sprintf("%s/tls=%v/deflate=%v", b.name, useTLS, compress)
				t.Run(name, func(t *testing.T) {
					defer watchdog(t, time.Minute, "echo")()
					s := startWS(t, b.name, b.listen, useTLS)
					ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
					defer cancel()
					c, err := s.dial(ctx, "/echo", compress)
					if err != nil {
						t.Fatal(err)
					}
					defer c.CloseNow()
					rng := rand.New(rand.NewPCG(1, uint64(len(name))))
					for _, typ := range []websocket.MessageType{websocket.MessageText, websocket.MessageBinary} {
						for _, n := range wsSizes {
							for _, chunk := range []int{0, 1 + n/7} {
								if err := roundTrip(ctx, c, typ, payload(rng, typ, n), chunk); err != nil {
									t.Fatalf("%v, %d bytes, chunk %d: %v", typ, n, chunk, err)
								}
							}
						}
					}
					if err := closeClean(c, "echo done"); err != nil {
						t.Fatal(err)
					}
					checkCloses(t, s, 1, "echo done")
				})
			}
		}
	}
}

// TestWebSocketClose covers the other endings: the server starting the
// close handshake with its own status code, which must reach the client,
// and a client that vanishes without one, which the server's blocked read
// must notice at once.
func TestWebSocketClose(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name+"/server", func(t *testing.T) {
			defer watchdog(t, time.Minute, "server close")()
			s := startWS(t, b.name, b.listen, false)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			c, err := s.dial(ctx, "/close", false)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
				t.Fatal(err)
			}
			_, _, err = c.Read(ctx)
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "server says bye" {
				t.Fatalf("client Read = %v, want close 4001 \"server says bye\"", err)
			}
			if _, errs := s.wait(t); len(errs) > 0 {
				t.Fatalf("server side: %v", errs)
			}
		})
		t.Run(b.name+"/vanish", func(t *testing.T) {
			defer watchdog(t, time.Minute, "client vanishing")()
			s := startWS(t, b.name, b.listen, false)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			c, err := s.dial(ctx, "/echo", false)
			if err != nil {
				t.Fatal(err)
			}
			if err := roundTrip(ctx, c, websocket.MessageBinary, []byte("x"), 0); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			c.CloseNow() // no close frame: the server's Read sees the end of the stream
			closes, errs := s.wait(t)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("server noticed the vanished client after %v", d)
			}
			if len(closes) != 0 || len(errs) != 1 || !errors.Is(errs[0], io.EOF) {
				t.Errorf("server side ended with close frames %v and errors %v, want just io.EOF", closes, errs)
			}
		})
	}
}

// TestWebSocketConcurrent runs 50 clients at once, each echoing 20 messages
// of random type and size (half of them with permessage-deflate), then
// closing cleanly.
func TestWebSocketConcurrent(t *testing.T) {
	const (
		clients  = 50
		messages = 20
		maxSize  = 64 << 10
	)
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			defer watchdog(t, 2*time.Minute, "concurrent clients")()
			s := startWS(t, b.name, b.listen, false)
			ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			for i := range clients {
				wg.Go(func() {
					c, err := s.dial(ctx, "/echo", i%2 == 1)
					if err != nil {
						t.Errorf("client %d: dial: %v", i, err)
						return
					}
					defer c.CloseNow()
					rng := rand.New(rand.NewPCG(uint64(i), 42))
					for m := range messages {
						typ := websocket.MessageText
						if rng.IntN(2) == 0 {
							typ = websocket.MessageBinary
						}
						p := payload(rng, typ, 1+rng.IntN(maxSize))
						if err := roundTrip(ctx, c, typ, p, rng.IntN(3)*len(p)/3); err != nil {
							t.Errorf("client %d, message %d: %v", i, m, err)
							return
						}
					}
					if err := closeClean(c, "client "+strings.Repeat("!", i%3)); err != nil {
						t.Errorf("client %d: %v", i, err)
					}
				})
			}
			wg.Wait()
			closes, errs := s.wait(t)
			for _, err := range errs {
				t.Errorf("server side: %v", err)
			}
			if len(closes) != clients {
				t.Errorf("server saw %d close frames, want %d", len(closes), clients)
			}
			for _, ce := range closes {
				if ce.Code != websocket.StatusNormalClosure || !strings.HasPrefix(ce.Reason, "client ") {
					t.Errorf("server saw close %d %q", ce.Code, ce.Reason)
				}
			}
		})
	}
}
