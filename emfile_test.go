//go:build linux

package netloop_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the server's logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAcceptEMFILE exhausts the descriptor table while a client waits in
// the backlog: http.Server must see a temporary error, back off rather than
// exit or spin, and serve the client once descriptors are free again.
func TestAcceptEMFILE(t *testing.T) {
	forEach(t, func(t *testing.T, im impl) {
		defer watchdog(t, 30*time.Second, "emfile")()
		ln := listen(t, im, "tcp4")
		var logs syncBuffer
		srv := &http.Server{
			Handler:  http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "served") }),
			ErrorLog: log.New(&logs, "", 0),
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		defer func() {
			srv.Close()
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve returned %v", err)
			}
		}()

		// Take every free descriptor but one, which the client's socket
		// then takes: the server's accept has none left.
		var lim syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
		low := lim
		low.Cur = uint64(openFDCount(t) + 64)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
			t.Skip("cannot lower RLIMIT_NOFILE:", err)
		}
		defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		var hogs []*os.File
		defer func() {
			for _, f := range hogs {
				f.Close()
			}
		}()
		for {
			f, err := os.Open(os.DevNull)
			if err != nil {
				break
			}
			hogs = append(hogs, f)
		}
		hogs[len(hogs)-1].Close()
		hogs = hogs[:len(hogs)-1]
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatalf("dial with the last descriptor: %v", err)
		}
		defer c.Close()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")

		// The server meets EMFILE, says so and keeps trying without
		// spinning.
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(logs.String(), "too many open files") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !strings.Contains(logs.String(), "retrying") {
			t.Fatalf("server log has no backed-off accept error:\n%s", logs.String())
		}
		before := processCPU(t)
		time.Sleep(500 * time.Millisecond)
		if used := processCPU(t) - before; used > 200*time.Millisecond {
			t.Errorf("process used %v of CPU in 500ms under EMFILE: spinning", used)
		}

		// Free descriptors: the waiting client is served.
		for _, f := range hogs[:32] {
			f.Close()
		}
		hogs = hogs[32:]
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("client not served after descriptors were freed: %v\nlog:\n%s", err, logs.String())
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "served" {
			t.Fatalf("got %q", b)
		}
	})
}

func openFDCount(t *testing.T) int {
	ents, err := os.ReadDir("/dev/fd")
	if err != nil {
		t.Skip("cannot count descriptors")
	}
	return len(ents)
}

func processCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
