// Command tlshttp2 serves HTTP/2 over TLS on netloop. Without -cert and
// -key it makes a self-signed certificate for localhost at start, which
// clients must be told to accept (curl -k).
//
//	go run ./examples/tlshttp2                    # https://127.0.0.1:8443
//	curl -k https://127.0.0.1:8443/               # hello over HTTP/2.0
//	go run ./examples/tlshttp2 -addr :443 -cert cert.pem -key key.pem
//
// http.Server.ServeTLS offers HTTP/2 through ALPN on any net.Listener, so
// the only change from a package net program is netloop.Listen.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/netloop/netloop"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "address to listen on")
	certFile := flag.String("cert", "", "PEM certificate chain (default: self-signed)")
	keyFile := flag.String("key", "", "PEM private key for -cert")
	flag.Parse()

	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case *certFile == "" && *keyFile == "":
		cert, err := selfSigned()
		if err != nil {
			log.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case *certFile == "" || *keyFile == "":
		log.Fatal("-cert and -key go together")
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello over %s\n", r.Proto)
	})

	ln, err := netloop.Listen("tcp", *addr) // instead of net.Listen
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: mux, TLSConfig: cfg, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("serving on https://%s (netloop native: %v)\n", ln.Addr(), netloop.Native())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	// With empty file names ServeTLS uses cfg.Certificates.
	if err := srv.ServeTLS(ln, *certFile, *keyFile); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	<-drained // Serve returns at once; Shutdown waits for requests in flight
}

// selfSigned makes a certificate for localhost, 127.0.0.1 and ::1, valid
// for a day.
func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
