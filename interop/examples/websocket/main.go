// Command websocket is a WebSocket echo server on netloop, using
// github.com/coder/websocket on top of net/http's Hijack. On SIGINT or
// SIGTERM it stops accepting and closes every open WebSocket with status
// 1001 (going away): http.Server.Shutdown does not see hijacked
// connections, so the handlers watch for shutdown themselves.
//
// Run it from the interop module, which carries the dependency:
//
//	cd interop
//	go run ./examples/websocket              # ws://127.0.0.1:8081/echo
//	websocat ws://127.0.0.1:8081/echo        # or any client: each message comes back
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/netloop/netloop"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "address to listen on")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var sockets sync.WaitGroup
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		sockets.Add(1)
		defer sockets.Done()
		c, err := websocket.Accept(w, r, nil) // hijacks the connection
		if err != nil {
			return // Accept has answered with an HTTP error
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		unwatch := context.AfterFunc(ctx, func() { c.Close(websocket.StatusGoingAway, "server shutting down") })
		defer unwatch()
		err = echo(r.Context(), c)
		if s := websocket.CloseStatus(err); s != websocket.StatusNormalClosure && s != websocket.StatusGoingAway {
			log.Printf("%s: %v", r.RemoteAddr, err)
		}
	})

	ln, err := netloop.Listen("tcp", *addr) // instead of net.Listen
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("serving ws://%s/echo (netloop native: %v)\n", ln.Addr(), netloop.Native())

	drained := make(chan struct{})
	go func() {
		defer close(drained)
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	<-drained
	sockets.Wait() // each handler finishes its close handshake (at most 5 s)
}

// echo sends every message back as it arrives, frame by frame, until the
// connection closes.
func echo(ctx context.Context, c *websocket.Conn) error {
	for {
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
		if err := w.Close(); err != nil {
			return err
		}
	}
}
