// Command unix serves HTTP on a unix socket with netloop. The socket file
// is removed when the server stops (SIGINT or SIGTERM), as package net's
// unix listeners do on Close.
//
//	go run ./examples/unix -socket /tmp/netloop.sock
//	curl --unix-socket /tmp/netloop.sock http://localhost/
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/netloop/netloop"
)

func main() {
	socket := flag.String("socket", filepath.Join(os.TempDir(), "netloop-example.sock"), "unix socket path")
	flag.Parse()

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello over a unix socket (%s %s)\n", r.Proto, r.URL.Path)
	})

	ln, err := netloop.Listen("unix", *socket) // instead of net.Listen
	if err != nil {
		log.Fatal(err) // "address already in use": another server, or a stale file to remove
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("serving on unix:%s (netloop native: %v)\n", ln.Addr(), netloop.Native())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shutdown) // closes ln, which removes the socket file
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	<-drained // Serve returns at once; Shutdown waits for requests in flight
}
