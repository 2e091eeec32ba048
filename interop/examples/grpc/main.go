// Command grpc serves gRPC on netloop: the standard health service and
// server reflection, in plaintext or, with -cert and -key, over TLS. With
// -check it is a client instead, asking a server's health service (a
// container health probe, say) and exiting 0 only if it is SERVING.
//
// Run it from the interop module, which carries the gRPC dependency so
// that netloop's own go.mod stays small:
//
//	cd interop
//	go run ./examples/grpc                          # serves 127.0.0.1:50051
//	go run ./examples/grpc -check 127.0.0.1:50051   # SERVING
//	grpcurl -plaintext 127.0.0.1:50051 list         # reflection
//	go run ./examples/grpc -cert c.pem -key k.pem   # TLS; -check ... -cert c.pem trusts it
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/netloop/netloop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "address to listen on")
	certFile := flag.String("cert", "", "PEM certificate: served with -key, trusted with -check")
	keyFile := flag.String("key", "", "PEM private key for -cert")
	check := flag.String("check", "", "instead of serving, check the health of the server at this address")
	flag.Parse()

	if *check != "" {
		os.Exit(checkHealth(*check, *certFile))
	}

	var opts []grpc.ServerOption
	if *certFile != "" {
		creds, err := credentials.NewServerTLSFromFile(*certFile, *keyFile)
		if err != nil {
			log.Fatal(err)
		}
		opts = append(opts, grpc.Creds(creds))
	}
	srv := grpc.NewServer(opts...)
	hs := health.NewServer() // reports SERVING for the whole server ("")
	healthgrpc.RegisterHealthServer(srv, hs)
	reflection.Register(srv)

	ln, err := netloop.Listen("tcp", *addr) // instead of net.Listen
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("serving gRPC on %s (netloop native: %v)\n", ln.Addr(), netloop.Native())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		hs.Shutdown() // health checks report NOT_SERVING from now on
		timer := time.AfterFunc(10*time.Second, srv.Stop)
		defer timer.Stop()
		srv.GracefulStop() // waits for RPCs in flight, or Stop cuts them off
	}()
	if err := srv.Serve(ln); err != nil { // nil after GracefulStop
		log.Fatal(err)
	}
}

// checkHealth asks the health service at addr, over TLS trusting caFile
// if it is set, and returns the exit status.
func checkHealth(addr, caFile string) int {
	creds := insecure.NewCredentials()
	if caFile != "" {
		var err error
		if creds, err = credentials.NewClientTLSFromFile(caFile, ""); err != nil {
			log.Fatal(err)
		}
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := healthgrpc.NewHealthClient(cc).Check(ctx, &healthgrpc.HealthCheckRequest{})
	if err != nil {
		log.Print(err)
		return 1
	}
	fmt.Println(resp.GetStatus())
	if resp.GetStatus() != healthgrpc.HealthCheckResponse_SERVING {
		return 1
	}
	return 0
}
