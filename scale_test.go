package netloop_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestManyConnections holds N connections open at once (15 000 in full,
// from a client in a child process, since both ends in one process would
// need twice the descriptors), each echoing its own id: every one must be
// served and verified, against net and netloop alike.
func TestManyConnections(t *testing.T) {
	n := 15000
	if testing.Short() {
		n = 2000
	}
	forEach(t, func(t *testing.T, im impl) {
		defer watchdog(t, 180*time.Second, "many connections")()
		ln := listen(t, im, "tcp4")
		var wg sync.WaitGroup
		defer wg.Wait()
		defer ln.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if errors.Is(err, net.ErrClosed) {
					return
				}
				if err != nil { // EMFILE and the like: report, back off, go on
					t.Errorf("accept: %v", err)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer c.Close()
					// Echo until the client closes. Not io.Copy(c, c): package
					// net would splice through a pipe pair per connection and
					// run out of descriptors.
					buf := make([]byte, 64)
					for {
						n, err := c.Read(buf)
						if n > 0 {
							if _, err := c.Write(buf[:n]); err != nil {
								return
							}
						}
						if err != nil {
							return
						}
					}
				}()
			}
		}()
		out, err := runChild(t, "TestManyConnectionsClient", 5*time.Minute,
			"NETLOOP_CLIENT_ADDR="+ln.Addr().String(), "NETLOOP_CLIENT_N="+strconv.Itoa(n))
		if err != nil || !strings.Contains(out, fmt.Sprintf("verified %d connections", n)) {
			t.Fatalf("client: %v\n%s", err, out)
		}
	})
}

// TestManyConnectionsClient is the child process of TestManyConnections.
func TestManyConnectionsClient(t *testing.T) {
	addr := os.Getenv("NETLOOP_CLIENT_ADDR")
	if addr == "" {
		t.Skip("runs as the child of TestManyConnections")
	}
	n, _ := strconv.Atoi(os.Getenv("NETLOOP_CLIENT_N"))
	conns := make([]net.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				// Reset rather than FIN: no TIME_WAIT left to exhaust the
				// ephemeral ports of the tests that follow.
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}
		}
	}()
	// Open them all first, so that all n are open at the same time.
	for i := range conns {
		var err error
		for try := 0; ; try++ {
			conns[i], err = net.DialTimeout("tcp", addr, 10*time.Second)
			if err == nil || try == 5 {
				break
			}
			time.Sleep(100 * time.Millisecond) // backlog full: retry as a client would
		}
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 256)
	for i, c := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.SetDeadline(time.Now().Add(60 * time.Second))
			msg := make([]byte, 64)
			binary.LittleEndian.PutUint64(msg, uint64(i))
			if _, err := c.Write(msg); err != nil {
				errs <- err
				return
			}
			got := make([]byte, 64)
			if _, err := io.ReadFull(c, got); err != nil {
				errs <- fmt.Errorf("conn %d: %v", i, err)
				return
			}
			if string(got) != string(msg) {
				errs <- fmt.Errorf("conn %d: got another connection's bytes", i)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	fmt.Printf("verified %d connections\n", n)
}
