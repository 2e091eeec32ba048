package netloop_test

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/netloop/netloop"
)

// sink reads c to EOF in the background; the result describes what came.
func sink(c net.Conn) <-chan string {
	ch := make(chan string, 1)
	go func() {
		h := sha256.New()
		n, err := io.Copy(h, c)
		ch <- fmt.Sprintf("%d bytes sha256 %x %s", n, h.Sum(nil)[:8], errShape(err))
	}()
	return ch
}

// feed writes data to c and half-closes it, in the background.
func feed(c net.Conn, data []byte) {
	go func() {
		c.Write(data)
		c.(interface{ CloseWrite() error }).CloseWrite()
	}()
}

// copyAfterSmallRead copies data from a socket of lnB to one of lnA: a
// 1-byte Read first (netloop buffers more than it returns), then through
// a LimitedReader of 1 MiB, then io.Copy to EOF. rec gets what happened.
func copyAfterSmallRead(t *testing.T, lnA, lnB net.Listener, data []byte, rec func(string, ...any)) {
	dst, dstPeer := pipe(t, lnA)
	got := sink(dstPeer)
	src, srcPeer := pipe(t, lnB)
	feed(srcPeer, data)
	one := make([]byte, 1)
	n1, err := io.ReadFull(src, one)
	rec("small read: %d %v %s", n1, one[0] == data[0], errShape(err))
	lr := &io.LimitedReader{R: src, N: 1 << 20}
	n, err := io.Copy(dst, lr)
	rec("copy limited: %d left %d %s", n, lr.N, errShape(err))
	n, err = io.Copy(dst, src)
	rec("copy to EOF: %d %s", n, errShape(err))
	dst.(interface{ CloseWrite() error }).CloseWrite()
	rec("peer got: %s (want %x)", <-got, sha256.Sum256(data[1:]))
}

// copyIntoNet copies data from an accepted socket of lnB into a package net
// client of lnA (WriteTo on the source's side).
func copyIntoNet(t *testing.T, lnA, lnB net.Listener, data []byte, rec func(string, ...any)) {
	sinkS, sinkC := pipe(t, lnA)
	got := sink(sinkS)
	srcS, srcC := pipe(t, lnB)
	feed(srcC, data)
	n, err := io.Copy(sinkC, srcS)
	rec("copy to package net: %d %s", n, errShape(err))
	sinkC.(interface{ CloseWrite() error }).CloseWrite()
	rec("peer got: %s", <-got)
}

// TestSplice copies socket to socket through ReadFrom and WriteTo in every
// combination package net splices (netloop to netloop, package net to
// netloop, netloop to package net; limited, after a small Read left bytes in
// netloop's buffer; a read deadline expiring mid-copy) and requires the
// bytes, counts and errors package net gives. On Linux it also checks that
// netloop moved the bulk with splice(2), not through user space.
func TestSplice(t *testing.T) {
	data := make([]byte, 3<<20+101)
	rand.New(rand.NewSource(7)).Read(data)
	for _, network := range []string{"tcp4", "unix"} {
		t.Run(network, func(t *testing.T) {
			spliced := map[string]uint64{}
			differential(t, func(t *testing.T, im impl) string {
				defer watchdog(t, 60*time.Second, "splice")()
				before := netloop.SplicedBytes()
				lnA, lnB := listen(t, im, network), listen(t, im, network)
				var out []string
				rec := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }

				// 1. im to im.
				copyAfterSmallRead(t, lnA, lnB, data, rec)
				if nl, ok := lnB.(*netloop.Listener); ok && netloop.Native() {
					// Stats count every byte once: the small Read, the
					// buffered bytes and the spliced ones on the source,
					// the bytes that arrived on the sink.
					if r := nl.Stats().BytesRead; r != uint64(len(data)) {
						t.Errorf("source's listener counted %d bytes read, want %d", r, len(data))
					}
					if w := lnA.(*netloop.Listener).Stats().BytesWritten; w != uint64(len(data)-1) {
						t.Errorf("sink's listener counted %d bytes written, want %d", w, len(data)-1)
					}
				}

				// 2. package net's socket into im.
				dst, dstPeer := pipe(t, lnA)
				got := sink(dstPeer)
				srcS, srcC := pipe(t, lnB)
				feed(srcS, data)
				n, err := io.Copy(dst, srcC)
				rec("copy from package net: %d %s", n, errShape(err))
				dst.(interface{ CloseWrite() error }).CloseWrite()
				rec("peer got: %s", <-got)

				// 3. im into package net's socket.
				copyIntoNet(t, lnA, lnB, data, rec)

				// 4. The source's read deadline passes mid-copy, both ways
				// round (the error shapes of unix sockets differ by design:
				// package net's UnixConn has neither ReadFrom nor WriteTo).
				if network == "tcp4" {
					for _, fromNet := range []bool{false, true} {
						dst, dstPeer = pipe(t, lnA)
						got = sink(dstPeer)
						srcS, srcC = pipe(t, lnB)
						from, peer := srcS, srcC
						if fromNet {
							from, peer = srcC, srcS
						}
						peer.Write(data[:1000])
						from.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
						n, err = io.Copy(dst, from)
						rec("deadline (from net %v): %d %s", fromNet, n, errShape(err))
						dst.Close()
						rec("peer got: %s", <-got)
					}

					// 5. im into a package net socket dialled as "tcp4"
					// whose write deadline has passed: the error names
					// the sink's network as package net does.
					sinkC, err := net.Dial("tcp4", lnA.Addr().String())
					if err != nil {
						t.Fatal(err)
					}
					defer sinkC.Close()
					srcS, srcC = pipe(t, lnB)
					srcC.Write(data[:1000])
					sinkC.SetWriteDeadline(time.Now().Add(-time.Second))
					n, err = io.Copy(sinkC, srcS)
					rec("write deadline of a tcp4 sink: %d %s", n, errShape(err))
				}
				spliced[im.name] = netloop.SplicedBytes() - before
				t.Logf("spliced %d bytes\n%s", spliced[im.name], strings.Join(out, "\n"))
				return strings.Join(out, "\n")
			})
			if netloop.Native() && runtime.GOOS == "linux" {
				// Cases 1-3 move 3 x 3 MiB; the buffered bytes of case 1
				// and nothing else may go through user space.
				if got, want := spliced["netloop"], uint64(3*len(data)-20000); got < want {
					t.Errorf("netloop spliced %d bytes, want at least %d", got, want)
				}
				if spliced["net"] != 0 {
					t.Errorf("package net's run counted %d spliced bytes", spliced["net"])
				}
			}
		})
	}
}

// TestSpliceCloseSourceWhileSinkFull: closing the source of an io.Copy
// whose sink is full returns at once (the copy then fails), also when a
// small Read left bytes in netloop's buffer that the copy must send first.
func TestSpliceCloseSourceWhileSinkFull(t *testing.T) {
	differential(t, func(t *testing.T, im impl) string {
		defer watchdog(t, 30*time.Second, "close while sink full")()
		lnA, lnB := listen(t, im, "tcp4"), listen(t, im, "tcp4")
		dst, _ := pipe(t, lnA) // its peer never reads
		// Fill its send buffer up.
		for _, size := range []int{64 << 10, 1 << 10, 1} {
			chunk := make([]byte, size)
			dst.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			for {
				if _, err := dst.Write(chunk); err != nil {
					break
				}
			}
		}
		dst.SetWriteDeadline(time.Time{})
		src, srcPeer := pipe(t, lnB)
		srcPeer.Write(make([]byte, 3000))
		io.ReadFull(src, make([]byte, 1)) // netloop keeps the other 2999
		copied := make(chan error, 1)
		go func() {
			_, err := io.Copy(dst, src)
			copied <- err
		}()
		time.Sleep(100 * time.Millisecond)
		closed := make(chan struct{})
		go func() { src.Close(); close(closed) }()
		var out []string
		select {
		case <-closed:
			out = append(out, "source Close returned")
		case <-time.After(2 * time.Second):
			out = append(out, "source Close blocked behind the full sink")
		}
		dst.Close()
		select {
		case err := <-copied:
			out = append(out, fmt.Sprintf("copy failed: %v", err != nil))
		case <-time.After(5 * time.Second):
			out = append(out, "copy did not return after both closed")
		}
		<-closed
		return strings.Join(out, "\n")
	})
}
