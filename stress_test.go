package netloop_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netloop/netloop"
	"go.uber.org/goleak"
)

// stressFor is how long the stress tests repeat their rounds: once by
// default, or for NETLOOP_STRESS (a duration, e.g. 10m) for the long
// version:
//
//	NETLOOP_STRESS=10m go test -race -run 'Race|Concurrent' -timeout 0 .
func stressFor(t *testing.T) time.Time {
	d, err := time.ParseDuration(os.Getenv("NETLOOP_STRESS"))
	if err != nil || d <= 0 {
		return time.Time{}
	}
	t.Logf("repeating rounds for %v", d)
	return time.Now().Add(d)
}

// stressLeft is the time left until a stressFor deadline (0 without one).
func stressLeft(until time.Time) time.Duration {
	if until.IsZero() {
		return 0
	}
	return time.Until(until)
}

func TestMain(m *testing.M) {
	// Every goroutine started by the tests, netloop's loops included, must
	// be gone when they finish.
	goleak.VerifyTestMain(m)
}

// pattern fills b with the byte stream of connection id starting at off:
// each connection's stream is its 8-byte id repeated, so a single byte
// from another connection shows up wherever it lands.
func pattern(b []byte, id uint64, off int64) {
	var idb [8]byte
	binary.LittleEndian.PutUint64(idb[:], id)
	for i := range b {
		b[i] = idb[(off+int64(i))%8]
	}
}

func checkPattern(b []byte, id uint64, off int64) error {
	want := make([]byte, len(b))
	pattern(want, id, off)
	for i := range b {
		if b[i] != want[i] {
			return fmt.Errorf("conn %d: byte %d is %#x, want %#x: bytes from another connection", id, off+int64(i), b[i], want[i])
		}
	}
	return nil
}

// checkedStream reads c until an error, checking every byte against
// connection id's pattern from offset off on, and hands each checked chunk
// to then (which returns false to stop). A mismatch goes to fail.
func checkedStream(c net.Conn, id uint64, off int64, bufSize int, fail func(error), then func([]byte) bool) {
	buf := make([]byte, bufSize)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if err := checkPattern(buf[:n], id, off); err != nil {
				fail(err)
				return
			}
			off += int64(n)
			if !then(buf[:n]) {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestCloseRaceNoCrossTalk churns connections whose server side is closed
// at random moments while Reads and Writes are in flight on it, so that
// descriptor numbers are reused constantly, and checks that no byte ever
// reaches another connection.
func TestCloseRaceNoCrossTalk(t *testing.T) {
	until := stressFor(t)
	before := netloop.ReadStats()
	for round := 0; round == 0 || time.Now().Before(until); round++ {
		closeRaceRound(t)
	}
	logBatched(t, before)
}

// logBatched logs how many reads and writes the loops batched since
// before: the stress tests check invariants 1 and 5 on those paths only
// when they are taken (on Linux with io_uring; under -race the loops are
// usually counted as starved and batch little, so .ci/run also runs the
// suite without it).
func logBatched(t *testing.T, before netloop.Stats) {
	s := netloop.ReadStats()
	t.Logf("batched by the loops: %d reads, %d writes in %d io_uring_enter calls",
		s.BatchedReads-before.BatchedReads, s.BatchedWrites-before.BatchedWrites, s.WriteBatches-before.WriteBatches)
}

func closeRaceRound(t *testing.T) {
	conns, workers := 3000, 8
	if testing.Short() {
		conns = 600
	}
	ln, err := netloop.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	defer watchdog(t, 120*time.Second, "close race")()

	var mismatch atomic.Value
	var verified atomic.Int64
	fail := func(err error) { mismatch.CompareAndSwap(nil, err) }

	// Server: each connection echoes what it reads after checking it, and
	// a third goroutine closes it at a random moment.
	var srv sync.WaitGroup
	srv.Add(1)
	go func() {
		defer srv.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					fail(err)
				}
				return
			}
			srv.Add(1)
			go func() {
				defer srv.Done()
				var idb [8]byte
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.ReadFull(c, idb[:]); err != nil {
					c.Close()
					return
				}
				id := binary.LittleEndian.Uint64(idb[:])
				off := int64(8)
				closer := time.AfterFunc(time.Duration(rand.Intn(3000))*time.Microsecond, func() { c.Close() })
				defer closer.Stop()
				defer c.Close()
				// Echo what passes the check; stop at the first error.
				checkedStream(c, id, off, 1+rand.Intn(8192), fail, func(b []byte) bool {
					verified.Add(int64(len(b)))
					_, err := c.Write(b)
					return err == nil
				})
			}()
		}
	}()

	// Clients: write their pattern, read the echo and check it.
	var next atomic.Uint64
	var cli sync.WaitGroup
	for w := 0; w < workers; w++ {
		cli.Add(1)
		go func() {
			defer cli.Done()
			for mismatch.Load() == nil {
				id := next.Add(1)
				if id > uint64(conns) {
					return
				}
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					fail(err)
					return
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					checkedStream(c, id, 8, 4096, fail, func([]byte) bool { return true })
				}()
				msg := make([]byte, 8+rand.Intn(64<<10))
				pattern(msg, id, 0)
				binary.LittleEndian.PutUint64(msg[:8], id)
				c.Write(msg)
				off := int64(len(msg))
				for i := 0; i < rand.Intn(4); i++ {
					more := make([]byte, 1+rand.Intn(16<<10))
					pattern(more, id, off)
					if _, err := c.Write(more); err != nil {
						break
					}
					off += int64(len(more))
				}
				if rand.Intn(2) == 0 {
					c.(*net.TCPConn).SetLinger(0) // reset instead of FIN
				}
				c.Close()
				wg.Wait()
			}
		}()
	}
	cli.Wait()
	ln.Close()
	srv.Wait()
	if err, _ := mismatch.Load().(error); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d connections, %d bytes checked at the server", conns, verified.Load())
	if verified.Load() == 0 {
		t.Fatal("no byte reached the server: the test exercised nothing")
	}
}

// TestAcceptCloseRace closes listeners while Accept is blocked and while
// clients connect, many times over.
func TestAcceptCloseRace(t *testing.T) {
	rounds := 1000
	if testing.Short() {
		rounds = 200
	}
	until := stressFor(t)
	defer watchdog(t, 120*time.Second+stressLeft(until), "accept race")()
	for i := 0; i < rounds || time.Now().Before(until); i++ {
		ln, err := netloop.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for j := 0; j < 2; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					c, err := ln.Accept()
					if err != nil {
						if !errors.Is(err, net.ErrClosed) {
							t.Errorf("accept: %v", err)
						}
						return
					}
					c.Close()
				}
			}()
		}
		if i%2 == 0 {
			if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
				c.Close()
			}
		}
		ln.Close()
		wg.Wait()
	}
}

// TestConcurrentOpsAndClose runs Read, Write, SetDeadline and Close on
// one connection from many goroutines at once.
func TestConcurrentOpsAndClose(t *testing.T) {
	rounds := 500
	if testing.Short() {
		rounds = 100
	}
	ln := listen(t, impls[1], "tcp4")
	until := stressFor(t)
	defer watchdog(t, 120*time.Second+stressLeft(until), "concurrent ops")()
	for i := 0; i < rounds || time.Now().Before(until); i++ {
		s, c := pipe(t, ln)
		go io.Copy(io.Discard, c)
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(3)
			go func() { defer wg.Done(); s.Read(make([]byte, 100)) }()
			go func() { defer wg.Done(); s.Write(make([]byte, 100<<10)) }()
			go func() {
				defer wg.Done()
				s.SetDeadline(time.Now().Add(time.Duration(rand.Intn(2000)) * time.Microsecond))
			}()
		}
		time.Sleep(time.Duration(rand.Intn(500)) * time.Microsecond)
		s.Close()
		wg.Wait()
		c.Close()
	}
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	// Splice pipes pooled by package net and by netloop (as net's) are
	// closed by finalizers once two collections have emptied the pools.
	for range 3 {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// TestNothingLeaks opens a listener and many connections with reads,
// writes and pooled buffers in flight, closes everything, and checks that
// no descriptor, goroutine, loop or pooled buffer is left.
func TestNothingLeaks(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts descriptors through /proc")
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	beforeFDs := openFDs(t)
	ln, err := netloop.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if loops, _ := netloop.LoopsRunning(); loops == 0 && netloop.Native() {
		t.Fatal("no loop running while listening")
	}
	var clients []net.Conn
	var servers []net.Conn
	for i := 0; i < 100; i++ {
		s, c := pipeNoCleanup(t, ln)
		clients, servers = append(clients, c), append(servers, s)
		// Leave unread data in a pooled buffer on half of them.
		c.Write([]byte(strings.Repeat("x", 100)))
		if i%2 == 0 {
			s.Read(make([]byte, 10))
		}
	}
	if n := netloop.BuffersInUse(); n < 50 && netloop.Native() {
		t.Errorf("%d pooled buffers in use, want at least 50 (coalesced reads)", n)
	}
	ln.Close()
	for i := range servers {
		servers[i].Close()
		clients[i].Close()
	}
	if loops, users := netloop.LoopsRunning(); loops != 0 || users != 0 {
		t.Errorf("after closing everything: %d loops, %d registered descriptors", loops, users)
	}
	if n := netloop.BuffersInUse(); n != 0 {
		t.Errorf("%d pooled buffers still out", n)
	}
	if after := openFDs(t); after != beforeFDs {
		t.Errorf("open descriptors: %d before, %d after", beforeFDs, after)
	}
}

func pipeNoCleanup(t *testing.T, ln net.Listener) (server, client net.Conn) {
	t.Helper()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	client = dial(t, ln)
	server = <-ch
	if server == nil {
		t.Fatal("accept failed")
	}
	return server, client
}

// TestIdleConnsHoldNothing (invariant 7): idle keep-alive connections of
// an http.Server on netloop hold no pooled buffer and add no goroutine of
// netloop's own, after a request arrived while net/http's 1-byte background
// read was parked, which pulls it through a pooled buffer (coalescing).
func TestIdleConnsHoldNothing(t *testing.T) {
	if !netloop.Native() {
		t.Skip("package-net backend")
	}
	defer watchdog(t, 30*time.Second, "idle")()
	ts := start(t, impls[1], http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(50 * time.Millisecond)
		}
		io.WriteString(w, r.URL.Path)
	}))
	const clients = 40
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		c, err := net.Dial("tcp", ts.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The second request arrives while the first one's handler runs.
			io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
			time.Sleep(10 * time.Millisecond)
			io.WriteString(c, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
			br := bufio.NewReader(c)
			for _, want := range []string{"/slow", "/b"} {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != want {
					t.Errorf("got %q, want %q", b, want)
				}
			}
		}()
	}
	wg.Wait()
	time.Sleep(100 * time.Millisecond) // the server parks every connection
	if n := netloop.BuffersInUse(); n != 0 {
		t.Errorf("%d pooled buffers held by %d idle connections", n, clients)
	}
	// Goroutines: net/http's one per connection, and nothing of netloop's
	// beyond its loops.
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	if n := strings.Count(stacks, "github.com/netloop/netloop.(*netFD)") - strings.Count(stacks, "net/http.(*conn).serve"); n > 0 {
		t.Errorf("%d netloop goroutines beyond net/http's own per connection", n)
	}
	loops, _ := netloop.LoopsRunning()
	if got := strings.Count(stacks, "netloop/loop.(*Loop).run("); got != loops {
		t.Errorf("%d loop goroutines for %d loops", got, loops)
	}
}
