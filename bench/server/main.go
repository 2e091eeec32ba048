// Command server is the server under test of bench/load.sh: the same
// workload on package net (-impl std) or on netloop (-impl netloop).
//
//	-mode http: net/http on the listener; GET / -> "hello world" (11 bytes),
//	            GET /big -> 64 KiB. HTTP/1.1 and HTTP/2 with prior knowledge
//	            (h2c, http.Server.Protocols with SetUnencryptedHTTP2).
//	-mode echo: raw TCP echo, one goroutine per connection with a 4 KiB
//	            read/write loop.
//	-burn N:    N goroutines spin on the CPU beside the I/O, never blocking.
//
// It prints "listening on ADDR" once it accepts connections (with -addr
// 127.0.0.1:0 ADDR names the port the kernel chose) and exits on SIGTERM or
// SIGINT, printing netloop.ReadStats() to stderr first when -impl is netloop.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/netloop/netloop"
)

var (
	hello = []byte("hello world")
	big   = make([]byte, 64<<10)
)

func main() {
	impl := flag.String("impl", "std", "std | netloop")
	mode := flag.String("mode", "http", "http | echo")
	addr := flag.String("addr", "127.0.0.1:8080", "listen address (keep it on loopback)")
	loops := flag.Int("loops", 0, "netloop event loops (ListenConfig.Loops; 0: GOMAXPROCS)")
	burn := flag.Int("burn", 0, "CPU-bound goroutines spinning beside the I/O (every P busy)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile (runtime/pprof) to this file, from start to SIGTERM")
	tracefile := flag.String("trace", "", "write an execution trace (runtime/trace) of the second from 3 s to 4 s after start to this file")
	flag.Parse()
	if *tracefile != "" {
		go func() {
			time.Sleep(3 * time.Second)
			f, err := os.Create(*tracefile)
			if err != nil {
				log.Fatal(err)
			}
			if err := trace.Start(f); err != nil {
				log.Fatal(err)
			}
			time.Sleep(time.Second)
			trace.Stop()
			f.Close()
		}()
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
	}
	for i := range big {
		big[i] = 'x'
	}

	var ln net.Listener
	var err error
	switch *impl {
	case "std":
		ln, err = net.Listen("tcp", *addr)
	case "netloop":
		lc := netloop.ListenConfig{Loops: *loops}
		ln, err = lc.Listen(context.Background(), "tcp", *addr)
	default:
		err = fmt.Errorf("unknown -impl %q (want std or netloop)", *impl)
	}
	if err != nil {
		log.Fatal(err)
	}

	for range *burn {
		go spin()
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		if *cpuprofile != "" {
			pprof.StopCPUProfile()
		}
		if *impl == "netloop" {
			fmt.Fprintf(os.Stderr, "netloop stats: %+v\n", netloop.ReadStats())
		}
		os.Exit(0)
	}()

	switch *mode {
	case "http":
		var protocols http.Protocols
		protocols.SetHTTP1(true)
		protocols.SetUnencryptedHTTP2(true)
		srv := &http.Server{Handler: handler(), Protocols: &protocols}
		fmt.Printf("listening on %s\n", ln.Addr())
		err = srv.Serve(ln)
	case "echo":
		fmt.Printf("listening on %s\n", ln.Addr())
		err = serveEcho(ln)
	default:
		err = fmt.Errorf("unknown -mode %q (want http or echo)", *mode)
	}
	log.Fatal(err)
}

// spin is a CPU-bound goroutine that never blocks: the scheduler has to
// preempt it for the I/O goroutines to run.
func spin() {
	x := uint64(1)
	for {
		for range 1 << 20 {
			x = x*6364136223846793005 + 1442695040888963407
		}
		sink.Store(x)
	}
}

var sink atomic.Uint64

func handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(hello)
	})
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(big)
	})
	return mux
}

// serveEcho runs one goroutine per connection with a 4 KiB read/write loop.
func serveEcho(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 4096)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}
