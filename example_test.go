package netloop_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/netloop/netloop"
)

// Swap net.Listen for netloop.Listen; the server does not change.
func ExampleListen() {
	ln, err := netloop.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from netloop")
	})}
	go srv.Serve(ln)
	defer srv.Close()

	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	// Output: hello from netloop
}

// ListenConfig takes net.ListenConfig's options plus netloop's own: here,
// keep-alive probes for accepted connections, two loops and a cap of 1000
// open connections (Accept waits at the cap).
func ExampleListenConfig() {
	lc := netloop.ListenConfig{
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 10 * time.Second, Count: 3},
		Loops:           2,
		MaxConns:        1000,
	}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	fmt.Println(ln.Addr().Network())
	// Output: tcp
}

// Accepted connections carry what code asserts on *net.TCPConn; assert
// on interfaces (or on *netloop.Conn), not on *net.TCPConn.
func ExampleConn() {
	ln, err := netloop.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		io.WriteString(c, "request")
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
		c.Close()
	}()
	c, err := ln.Accept()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// Works with package net's connections too.
	if hc, ok := c.(interface{ CloseWrite() error }); ok {
		req, _ := io.ReadAll(c)
		io.Copy(c, strings.NewReader("reply to "+string(req)))
		hc.CloseWrite()
	}
	// netloop's own type, for its extras.
	nc := c.(*netloop.Conn)
	nc.SetNoDelay(true)
	fmt.Printf("%T\n", nc.LocalAddr())
	// Output: *net.TCPAddr
}

// Stats are cheap atomic counters; PublishExpvar puts the process-wide
// ones at /debug/vars.
func ExampleListener_Stats() {
	ln, err := netloop.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	c, _ := net.Dial("tcp", ln.Addr().String())
	s, _ := ln.Accept()
	c.Write([]byte("ping"))
	io.ReadFull(s, make([]byte, 4))
	s.Close()
	c.Close()
	st := ln.(*netloop.Listener).Stats()
	fmt.Println(st.AcceptedConns, st.OpenConns, st.BytesRead)
	// Output: 1 0 4
}
