package netloop_test

import (
	"io"
	"net"
	"testing"
	"time"
)

// Benchmarks run every case against package net and netloop in the same
// process, as sub-benchmarks named net and netloop; bench/compare.sh turns
// a run into ratios (netloop / net).
//
//	go test -run '^$' -bench . -count 6 -cpu 1,2 | tee bench.txt

func benchEach(b *testing.B, f func(b *testing.B, im impl)) {
	for _, im := range impls {
		b.Run(im.name, func(b *testing.B) { f(b, im) })
	}
}

func benchPipe(b *testing.B, im impl) (server, client net.Conn) {
	ln, err := im.listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	return pipe(b, ln)
}

// BenchmarkEchoRoundTrip: a client writes 512 bytes, the server (under
// test) reads and writes them back.
func BenchmarkEchoRoundTrip(b *testing.B) {
	benchEach(b, func(b *testing.B, im impl) {
		s, c := benchPipe(b, im)
		go func() {
			buf := make([]byte, 4096)
			for {
				n, err := s.Read(buf)
				if err != nil {
					return
				}
				if _, err := s.Write(buf[:n]); err != nil {
					return
				}
			}
		}()
		msg := make([]byte, 512)
		got := make([]byte, 512)
		b.SetBytes(512)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			c.Write(msg)
			if _, err := io.ReadFull(c, got); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAccept: connections accepted (and closed) per second.
func BenchmarkAccept(b *testing.B) {
	benchEach(b, func(b *testing.B, im impl) {
		ln, err := im.listen("tcp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		done := make(chan error, 1)
		go func() {
			for i := 0; i < b.N; i++ {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					done <- err
					return
				}
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}
			done <- nil
		}()
		for i := 0; i < b.N; i++ {
			c, err := ln.Accept()
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkDeadlineSetClear: what net/http does around every request.
func BenchmarkDeadlineSetClear(b *testing.B) {
	past := time.Unix(1, 0)
	benchEach(b, func(b *testing.B, im impl) {
		s, _ := benchPipe(b, im)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			s.SetReadDeadline(past)
			s.SetReadDeadline(time.Time{})
		}
	})
}

// BenchmarkDeadlineFuture: setting a deadline in the future (ReadTimeout).
func BenchmarkDeadlineFuture(b *testing.B) {
	benchEach(b, func(b *testing.B, im impl) {
		s, _ := benchPipe(b, im)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			s.SetReadDeadline(time.Now().Add(time.Minute))
		}
	})
}

func benchRead(b *testing.B, size, chunk int) {
	benchEach(b, func(b *testing.B, im impl) {
		s, c := benchPipe(b, im)
		go func() {
			buf := make([]byte, 64<<10)
			for {
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}()
		buf := make([]byte, chunk)
		b.SetBytes(int64(size))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for got := 0; got < size; {
				n, err := s.Read(buf)
				if err != nil {
					b.Fatal(err)
				}
				got += n
			}
		}
		b.StopTimer()
		s.Close()
	})
}

func benchWrite(b *testing.B, size int) {
	benchEach(b, func(b *testing.B, im impl) {
		s, c := benchPipe(b, im)
		go io.Copy(io.Discard, c)
		msg := make([]byte, size)
		b.SetBytes(int64(size))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := s.Write(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkReadSmall(b *testing.B)  { benchRead(b, 1<<10, 64) } // coalesced
func BenchmarkReadLarge(b *testing.B)  { benchRead(b, 256<<10, 64<<10) }
func BenchmarkWriteSmall(b *testing.B) { benchWrite(b, 128) }
func BenchmarkWriteLarge(b *testing.B) { benchWrite(b, 256<<10) }

// BenchmarkProxyCopy: a proxy's io.Copy from one accepted connection to
// another (both under test; splice(2) on Linux for both stacks), 256 KiB
// per op from a client on one side to a client on the other.
func BenchmarkProxyCopy(b *testing.B) {
	benchEach(b, func(b *testing.B, im impl) {
		in, inPeer := benchPipe(b, im)
		out, outPeer := benchPipe(b, im)
		go io.Copy(out, in)
		go func() {
			buf := make([]byte, 256<<10)
			for {
				if _, err := inPeer.Write(buf); err != nil {
					return
				}
			}
		}()
		buf := make([]byte, 256<<10)
		b.SetBytes(int64(len(buf)))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := io.ReadFull(outPeer, buf); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		inPeer.Close()
		in.Close()
		out.Close()
	})
}
