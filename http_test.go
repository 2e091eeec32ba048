package netloop_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// serve starts an httptest server for h on a listener of im; it is closed
// by t.Cleanup. configure, if not nil, adjusts the http.Server first.
func serve(t *testing.T, im impl, h http.Handler, configure func(*httptest.Server)) *httptest.Server {
	t.Helper()
	ln, err := im.listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(h)
	ts.Listener.Close()
	ts.Listener = ln
	if configure != nil {
		configure(ts)
	}
	t.Cleanup(ts.Close)
	return ts
}

func start(t *testing.T, im impl, h http.Handler) *httptest.Server {
	ts := serve(t, im, h, nil)
	ts.Start()
	return ts
}

// echoHandler answers "ok <path>" or echoes the request body with its hash.
var echoHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
		return
	}
	fmt.Fprintf(w, "ok %s", r.URL.Path)
})

func get(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHTTPKeepAlive(t *testing.T) {
	forEach(t, func(t *testing.T, im impl) {
		defer watchdog(t, 30*time.Second, "keep-alive")()
		var conns atomic.Int32
		ts := serve(t, im, echoHandler, func(ts *httptest.Server) {
			ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
		})
		ts.Start()
		c := ts.Client()
		for i := 0; i < 200; i++ {
			if got, want := get(t, c, fmt.Sprintf("%s/r%d", ts.URL, i)), fmt.Sprintf("ok /r%d", i); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
		if n := conns.Load(); n != 1 {
			t.Errorf("200 sequential requests used %d connections, want 1", n)
		}
	})
}

func TestHTTPPipelining(t *testing.T) {
	forEach(t, func(t *testing.T, im impl) {
		defer watchdog(t, 30*time.Second, "pipelining")()
		ts := start(t, im, echoHandler)
		c, err := net.Dial("tcp", ts.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var req bytes.Buffer
		const n = 50
		for i := 0; i < n; i++ {
			fmt.Fprintf(&req, "GET /p%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
		}
		if _, err := c.Write(req.Bytes()); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		for i := 0; i < n; i++ {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := fmt.Sprintf("ok /p%d", i); string(b) != want {
				t.Fatalf("response %d: %q, want %q", i, b, want)
			}
		}
	})
}

func TestHTTPChunked(t *testing.T) {
	forEach(t, func(t *testing.T, im impl) {
		defer watchdog(t, 30*time.Second, "chunked")()
		ts := start(t, im, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				t.Error(err)
			}
			if len(r.TransferEncoding) == 0 || r.TransferEncoding[0] != "chunked" {
				t.Errorf("request not chunked: %v", r.TransferEncoding)
			}
			for i := 0; i < 20; i++ {
				fmt.Fprintf(w, "[%d:%s]", i, body)
				w.(http.Flusher).Flush()
			}
		}))
		pr, pw := io.Pipe()
		go func() {
			for i := 0; i < 10; i++ {
				fmt.Fprintf(pw, "c%d", i)
			}
			pw.Close()
		}()
		resp, err := ts.Client().Post(ts.URL, "text/plain", pr)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
			t.Errorf("response not chunked: %v", resp.TransferEncoding)
		}
		b, _ := io.ReadAll(resp.Body)
		var want strings.Builder
		for i := 0; i < 20; i++ {
			fmt.Fprintf(&want, "[%d:c0c1c2c3c4c5c6c7c8c9]", i)
		}
		if string(b) != want.String() {
			t.Fatalf("got %q", b)
		}
	})
}

func TestHTTPLargeBodies(t *testing.T) {
	const size = 32 << 20
	data := make([]byte, size)
	rand.New(rand.NewSource(3)).Read(data)
	sum := sha256.Sum256(data)
	forEach(t, func(t *testing.T, im impl) {
		defer watchdog(t, 60*time.Second, "large bodies")()
		ts := start(t, im, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				echoHandler(w, r)
				return
			}
			w.Header().Set("Content-Length", strconv.Itoa(size))
			w.Write(data)
		}))
		c := ts.Client()
		// Upload.
		if got, want := func() string {
			resp, err := c.Post(ts.URL, "application/octet-stream", bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return string(b)
		}(), fmt.Sprintf("%d %x", size, sum); got != want {
			t.Fatalf("upload: got %q, want %q", got, want)
		}
		// Download.
		resp, err := c.Get(ts.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		if err != nil || n != size || !bytes.Equal(h.Sum(nil), sum[:]) {
			t.Fatalf("download: %d bytes, %v, checksum ok %v", n, err, bytes.Equal(h.Sum(nil), sum[:]))
		}
	})
}

func TestHTTPExpectContinue(t *testing.T) {
	forEach(t, func(t *testing.T, im impl) {
		defer watchdog(t, 30*time.Second, "100-continue")()
		ts := start(t, im, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/reject" {
				http.Error(w, "no", http.StatusForbidden)
				return
			}
			echoHandler(w, r)
		}))
		for _, path := range []string{"/accept", "/reject"} {
			c, err := net.Dial("tcp", ts.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			body := "0123456789"
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", path, len(body))
			br := bufio.NewReader(c)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if path == "/reject" {
				if !strings.Contains(line, "403") {
					t.Fatalf("reject: got %q", line)
				}
				c.Close()
				continue
			}
			if !strings.Contains(line, "100 Continue") {
				t.Fatalf("got %q, want 100 Continue", line)
			}
			br.ReadString('\n') // blank line after the interim response
			io.WriteString(c, body)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if want := fmt.Sprintf("10 %x", sha256.Sum256([]byte(body))); string(b) != want {
				t.Fatalf("got %q, want %q", b, want)
			}
			c.Close()
		}
	})
}

func TestHTTPHijack(t *testing.T) {
	forEach(t, func(t *testing.T, im impl) {
		defer watchdog(t, 30*time.Second, "hijack")()
		ts := start(t, im, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, brw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
			brw.Flush()
			// Echo lines until the client half-closes.
			for {
				line, err := brw.ReadString('\n')
				if err != nil {
					return
				}
				brw.WriteString("echo:" + line)
				brw.Flush()
			}
		}))
		c, err := net.Dial("tcp", ts.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		for i := 0; i < 100; i++ {
			fmt.Fprintf(c, "line %d\n", i)
			got, err := br.ReadString('\n')
			if want := fmt.Sprintf("echo:line %d\n", i); err != nil || got != want {
				t.Fatalf("got %q %v, want %q", got, err, want)
			}
		}
		c.(*net.TCPConn).CloseWrite()
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("after close: %v", err)
		}
	})
}

func TestHTTPContextCanceledOnDisconnect(t *testing.T) {
	forEach(t, func(t *testing.T, im impl) {
		defer watchdog(t, 30*time.Second, "context cancel")()
		started := make(chan struct{})
		canceled := make(chan error, 1)
		ts := start(t, im, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(started)
			select {
			case <-r.Context().Done():
				canceled <- r.Context().Err()
			case <-time.After(10 * time.Second):
				canceled <- errors.New("context not canceled within 10s")
			}
		}))
		c, err := net.Dial("tcp", ts.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		<-started
		c.Close()
		if err := <-canceled; !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	})
}

func TestHTTPShutdownDrains(t *testing.T) {
	forEach(t, func(t *testing.T, im impl) {
		defer watchdog(t, 30*time.Second, "shutdown")()
		ln, err := im.listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		inflight := make(chan struct{}, 10)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inflight <- struct{}{}
			time.Sleep(300 * time.Millisecond)
			io.WriteString(w, "drained")
		})}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		url := "http://" + ln.Addr().String()
		var wg sync.WaitGroup
		results := make(chan string, 5)
		for i := 0; i < 5; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := http.Get(url)
				if err != nil {
					results <- err.Error()
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				results <- string(b)
			}()
		}
		for i := 0; i < 5; i++ {
			<-inflight
		}
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		close(results)
		for r := range results {
			if r != "drained" {
				t.Errorf("in-flight request got %q", r)
			}
		}
		if err := <-served; err != http.ErrServerClosed {
			t.Fatalf("Serve returned %v", err)
		}
		if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			t.Error("listener still accepting after Shutdown")
		}
		http.DefaultClient.CloseIdleConnections()
	})
}

func TestHTTPTimeouts(t *testing.T) {
	forEach(t, func(t *testing.T, im impl) {
		defer watchdog(t, 30*time.Second, "timeouts")()
		ts := serve(t, im, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				time.Sleep(400 * time.Millisecond)
			}
			io.WriteString(w, "ok")
		}), func(ts *httptest.Server) {
			ts.Config.ReadTimeout = 200 * time.Millisecond
			ts.Config.WriteTimeout = 200 * time.Millisecond
			ts.Config.IdleTimeout = 300 * time.Millisecond
		})
		ts.Start()
		addr := ts.Listener.Addr().String()

		// ReadTimeout: a client that stalls mid-headers is cut off.
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n")
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadAll(c)
		if el := time.Since(start); err != nil || el > 3*time.Second || el < 100*time.Millisecond {
			t.Errorf("stalled request: closed after %v, err %v", el, err)
		}
		c.Close()

		// WriteTimeout: a response written after it has passed never arrives.
		c, _ = net.Dial("tcp", addr)
		io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil || len(b) != 0 {
			t.Errorf("slow response: got %q, %v; want nothing and EOF", b, err)
		}
		c.Close()

		// IdleTimeout: an idle keep-alive connection is closed.
		c, _ = net.Dial("tcp", addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		start = time.Now()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("idle conn: %v, want EOF", err)
		}
		if el := time.Since(start); el > 3*time.Second || el < 150*time.Millisecond {
			t.Errorf("idle conn closed after %v", el)
		}
		c.Close()
	})
}

func TestHTTP2TLS(t *testing.T) {
	forEach(t, func(t *testing.T, im impl) {
		defer watchdog(t, 30*time.Second, "h2 tls")()
		ts := serve(t, im, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s", r.Proto, r.URL.Path)
		}), func(ts *httptest.Server) {
			ts.EnableHTTP2 = true
			// The HTTP/2 client may dial spare connections and drop them
			// mid-handshake; ts.Close then closes them (either stack).
			ts.Config.ErrorLog = log.New(io.Discard, "", 0)
		})
		ts.StartTLS()
		concurrentH2(t, ts.Client(), ts.URL, true)
	})
}

// concurrentH2 runs 50 concurrent GETs through c and checks that each was
// answered over HTTP/2 (and, if tls, that ALPN chose h2).
func concurrentH2(t *testing.T, c *http.Client, url string, tls bool) {
	t.Helper()
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get(fmt.Sprintf("%s/s%d", url, i))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if want := fmt.Sprintf("HTTP/2.0 /s%d", i); string(b) != want {
				t.Errorf("got %q, want %q", b, want)
			}
			if tls && (resp.TLS == nil || resp.TLS.NegotiatedProtocol != "h2") {
				t.Errorf("ALPN did not negotiate h2: %+v", resp.TLS)
			}
		}()
	}
	wg.Wait()
}

func TestHTTP2Cleartext(t *testing.T) {
	forEach(t, func(t *testing.T, im impl) {
		defer watchdog(t, 30*time.Second, "h2c")()
		ts := serve(t, im, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s", r.Proto, r.URL.Path)
		}), func(ts *httptest.Server) {
			ts.Config.Protocols = new(http.Protocols)
			ts.Config.Protocols.SetHTTP1(true)
			ts.Config.Protocols.SetUnencryptedHTTP2(true)
		})
		ts.Start()
		tr := &http.Transport{Protocols: new(http.Protocols)}
		tr.Protocols.SetUnencryptedHTTP2(true)
		defer tr.CloseIdleConnections()
		concurrentH2(t, &http.Client{Transport: tr}, ts.URL, false)
	})
}

func TestHTTPManyClients(t *testing.T) {
	clients, requests := 200, 200
	if testing.Short() {
		clients, requests = 50, 40
	}
	forEach(t, func(t *testing.T, im impl) {
		defer watchdog(t, 120*time.Second, "many clients")()
		ts := start(t, im, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Id", r.Header.Get("X-Id"))
			w.Write(body)
		}))
		var wg sync.WaitGroup
		var failed atomic.Int32
		for i := 0; i < clients; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tr := &http.Transport{MaxIdleConnsPerHost: 1}
				defer tr.CloseIdleConnections()
				c := &http.Client{Transport: tr}
				for j := 0; j < requests && failed.Load() == 0; j++ {
					id := fmt.Sprintf("%d-%d", i, j)
					body := strings.Repeat(id+";", 1+(i*j)%50)
					req, _ := http.NewRequest("POST", ts.URL, strings.NewReader(body))
					req.Header.Set("X-Id", id)
					resp, err := c.Do(req)
					if err != nil {
						t.Error(err)
						failed.Add(1)
						return
					}
					got, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || string(got) != body || resp.Header.Get("X-Id") != id {
						t.Errorf("request %s: got %d bytes for id %q, %v", id, len(got), resp.Header.Get("X-Id"), err)
						failed.Add(1)
						return
					}
				}
			}()
		}
		wg.Wait()
	})
}
