//go:build unix

// Command graceful is an HTTP server on netloop that shuts down gracefully
// on SIGINT or SIGTERM, and restarts without refusing a connection on
// SIGHUP: it starts a new copy of its executable, hands it the listening
// socket (exec.Cmd.ExtraFiles in the parent, netloop.FileListener in the
// child), waits until the child has taken the socket over, then finishes
// its requests in flight and exits. Both serve the socket meanwhile, so a
// new binary can be rolled out by replacing the file and sending SIGHUP.
//
//	go build -o /tmp/graceful ./examples/graceful   # not go run: the child re-executes the binary
//	/tmp/graceful -addr 127.0.0.1:8080 &
//	curl http://127.0.0.1:8080/                     # hello from pid 1234
//	curl http://127.0.0.1:8080/slow &               # answered by pid 1234 after 2 s...
//	kill -HUP 1234                                  # ...while pid 1235 takes over
//	curl http://127.0.0.1:8080/                     # hello from pid 1235
//	kill -TERM 1235
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/netloop/netloop"
)

// childEnv marks a process started by a restart: its descriptor 3 is the
// listening socket and descriptor 4 a pipe to close once it serves.
const childEnv = "NETLOOP_GRACEFUL_CHILD"

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on (a restarted process inherits the socket instead)")
	flag.Parse()
	log.SetPrefix(fmt.Sprintf("[pid %d] ", os.Getpid()))

	ln, err := listen(*addr)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from pid %d\n", os.Getpid())
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Second)
		fmt.Fprintf(w, "slow hello from pid %d\n", os.Getpid())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Printf("serving on http://%s", ln.Addr())

	if os.Getenv(childEnv) != "" {
		ready := os.NewFile(4, "ready")
		io.WriteString(ready, "ready")
		ready.Close()
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	for {
		select {
		case err := <-served:
			log.Fatal(err)
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				if err := restart(ln); err != nil {
					log.Printf("restart failed, still serving: %v", err)
					continue
				}
			}
			log.Printf("%v: finishing requests in flight", sig)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				log.Fatal(err)
			}
			log.Print("done")
			return
		}
	}
}

// listen opens the listener, or takes over the one a restart handed down.
func listen(addr string) (net.Listener, error) {
	if os.Getenv(childEnv) == "" {
		return netloop.Listen("tcp", addr) // instead of net.Listen
	}
	// FileListener (instead of net.FileListener) takes its own copy.
	f := os.NewFile(3, "listener")
	defer f.Close()
	return netloop.FileListener(f)
}

// restart starts a copy of this program on the same listening socket and
// waits until it serves.
func restart(ln net.Listener) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	f, err := ln.(*netloop.Listener).File()
	if err != nil {
		return err
	}
	defer f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()

	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.ExtraFiles = []*os.File{f, w} // descriptors 3 and 4 in the child
	err = cmd.Start()
	w.Close() // the child holds the write end now; EOF if it dies
	if err != nil {
		return err
	}
	r.SetReadDeadline(time.Now().Add(10 * time.Second))
	if msg, err := io.ReadAll(r); string(msg) != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("new process %d did not start serving (read %q, %v)", cmd.Process.Pid, msg, err)
	}
	log.Printf("pid %d serves the socket now", cmd.Process.Pid)
	return nil
}
