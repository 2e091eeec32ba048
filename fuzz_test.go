package netloop_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// FuzzConnOps applies a random sequence of operations — writes of random
// sizes both ways, reads (plain, small and coalesced), deadlines,
// half-closes and closes — to a connection accepted by package net and to
// one accepted by netloop, each driven from a package-net client, and
// requires the same observable outcome from both: bytes, errors by
// identity, EOF.
//
// Every outcome the model asks for is deterministic: a read asks only for
// bytes already written (or for EOF after a half-close), so no result
// depends on timing.
//
//	go test -run '^$' -fuzz FuzzConnOps -fuzztime 10m .   # a longer run
func FuzzConnOps(f *testing.F) {
	f.Add([]byte{0, 10, 2, 10, 1, 20, 3, 20})
	f.Add([]byte{0, 200, 9, 3, 9, 50, 9, 200, 5, 2, 0, 8})
	f.Add([]byte{4, 0, 0, 5, 2, 5, 6, 0, 3, 0, 7, 0, 2, 1})
	f.Add([]byte{1, 255, 1, 255, 3, 255, 3, 255, 8, 0, 7, 0, 7, 0})
	f.Fuzz(func(t *testing.T, prog []byte) {
		if len(prog) > 64 {
			prog = prog[:64]
		}
		var logs [2]string
		for i, im := range impls {
			logs[i] = runProgram(t, im, prog)
		}
		if logs[0] != logs[1] {
			t.Fatalf("program %v:\nnet:\n%s\nnetloop:\n%s", prog, logs[0], logs[1])
		}
	})
}

func runProgram(t *testing.T, im impl, prog []byte) string {
	ln, err := im.listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, c := pipeNoCleanup(t, ln)
	// Reset at the end instead of FIN: thousands of runs must not leave
	// TIME_WAIT sockets that exhaust the ephemeral ports.
	defer func() {
		s.(interface{ SetLinger(int) error }).SetLinger(0)
		c.(*net.TCPConn).SetLinger(0)
		s.Close()
		c.Close()
	}()
	s.SetDeadline(time.Now().Add(10 * time.Second))
	c.SetDeadline(time.Now().Add(10 * time.Second))

	var out strings.Builder
	rec := func(format string, args ...any) { fmt.Fprintf(&out, format+"\n", args...) }
	var toServer, toClient bytes.Buffer // written and not yet read, per direction
	var stream byte
	next := func(n int) []byte { // distinct bytes, so misplaced ones show
		b := make([]byte, n)
		for i := range b {
			stream++
			b[i] = stream
		}
		return b
	}
	var clientShut, serverShut, serverClosed bool
	const maxPending = 32 << 10 // stay far below the socket buffers: writes never block
	readServer := func(n int, chunk int) {
		want := min(n, toServer.Len())
		if clientShut && toServer.Len() == 0 {
			want = 1 // expect EOF
		}
		if want == 0 {
			return
		}
		got := make([]byte, 0, want)
		var err error
		for len(got) < want && err == nil {
			buf := make([]byte, min(chunk, want-len(got)))
			var k int
			k, err = s.Read(buf)
			got = append(got, buf[:k]...)
		}
		exp := toServer.Next(len(got))
		rec("server read %d ok=%v %s", len(got), bytes.Equal(got, exp), errShape(err))
	}
	for pc := 0; pc+1 < len(prog); pc += 2 {
		op, arg := prog[pc]%10, int(prog[pc+1])
		switch op {
		case 0: // client writes
			n := arg * 97 % 4096
			if clientShut || serverClosed || toServer.Len()+n > maxPending { // after Close: RST timing
				continue
			}
			b := next(n)
			k, err := c.Write(b)
			toServer.Write(b[:k])
			rec("client write %d %s", k, errShape(err))
		case 1: // server writes
			n := arg * 131 % 8192
			if toClient.Len()+n > maxPending {
				continue
			}
			b := next(n)
			k, err := s.Write(b)
			if !serverShut && !serverClosed {
				toClient.Write(b[:k])
			}
			rec("server write %d %s", k, errShape(err))
		case 2: // server reads what is there, in one buffer
			if serverClosed {
				_, err := s.Read(make([]byte, 8))
				rec("server read after close %s", errShape(err))
				continue
			}
			readServer(arg*53%5000+1, 1<<20)
		case 3: // client reads what the server sent
			want := min(arg*211%10000+1, toClient.Len())
			if want == 0 {
				continue
			}
			got := make([]byte, want)
			k, err := io.ReadFull(c, got)
			rec("client read %d ok=%v %s", k, bytes.Equal(got[:k], toClient.Next(k)), errShape(err))
		case 4: // a read with a past deadline times out, then the conn works on
			s.SetReadDeadline(time.Unix(1, 0))
			k, err := s.Read(make([]byte, 16))
			rec("server read past deadline n=%d %s", k, errShape(err))
			s.SetReadDeadline(time.Now().Add(10 * time.Second))
		case 5: // client half-closes
			if !clientShut {
				clientShut = true
				rec("client CloseWrite %s", errShape(c.(*net.TCPConn).CloseWrite()))
			}
		case 6: // server half-closes
			if !serverShut && !serverClosed {
				serverShut = true
				rec("server CloseWrite %s", errShape(s.(interface{ CloseWrite() error }).CloseWrite()))
			}
		case 7: // server closes (twice is an error)
			if !serverClosed && toServer.Len() == 0 {
				serverClosed = true
				rec("server Close %s", errShape(s.Close()))
				toClient.Reset()
			} else if serverClosed {
				rec("server Close again %s", errShape(s.Close()))
			}
		case 8: // zero-length read
			k, err := s.Read(nil)
			rec("server zero read n=%d %s", k, errShape(err))
		case 9: // small reads: the coalescing path
			if !serverClosed {
				readServer(arg*7%300+1, arg%13+1)
			}
		}
	}
	return out.String()
}
