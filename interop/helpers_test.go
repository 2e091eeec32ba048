package interop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netloop/netloop"
)

// backends is the table every test runs against: package net, the
// reference, and netloop, which must behave the same.
var backends = []struct {
	name   string
	listen listenFunc
}{
	{"net", net.Listen},
	{"netloop", netloop.Listen},
}

type listenFunc = func(network, address string) (net.Listener, error)

// checkedListener wraps a listener and records what it accepted, so a test
// can confirm that the netloop case really ran on netloop's connections.
type checkedListener struct {
	net.Listener
	netloop  bool
	accepted atomic.Int64
	wrong    atomic.Value // string: the first unexpected concrete type
}

func (l *checkedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.accepted.Add(1)
	if _, isNetloop := c.(*netloop.Conn); isNetloop != l.netloop {
		l.wrong.CompareAndSwap(nil, fmt.Sprintf("%T", c))
	}
	return c, nil
}

// listen opens a listener of the named backend on a loopback TCP port or,
// for network "unix", on a socket in a fresh temporary directory. It is
// closed, and checked (it accepted connections of the expected type; a
// unix socket file is gone), when the test ends.
func listen(t testing.TB, backend string, fn listenFunc, network string) *checkedListener {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		// Not t.TempDir: its path can exceed the 108 bytes of sun_path.
		dir, err := os.MkdirTemp("", "nli")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		addr = filepath.Join(dir, "s.sock")
	}
	ln, err := fn(network, addr)
	if err != nil {
		t.Fatalf("%s.Listen(%q, %q): %v", backend, network, addr, err)
	}
	cl := &checkedListener{Listener: ln, netloop: backend == "netloop"}
	t.Cleanup(func() {
		ln.Close()
		if cl.accepted.Load() == 0 {
			t.Errorf("%s listener accepted no connections", backend)
		}
		if w := cl.wrong.Load(); w != nil {
			t.Errorf("%s listener accepted a %s", backend, w)
		}
		if network == "unix" {
			if _, err := os.Stat(addr); !os.IsNotExist(err) {
				t.Errorf("%s unix listener closed, socket file: %v, want it removed", backend, err)
			}
		}
	})
	return cl
}

// testCert is a self-signed certificate for 127.0.0.1, ::1 and localhost,
// made once per test binary; pool trusts it.
var testCert = sync.OnceValues(func() (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "netloop interop test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
})

// serverTLS and clientTLS are TLS configurations around testCert.
func serverTLS(nextProtos ...string) *tls.Config {
	cert, _ := testCert()
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: nextProtos}
}

func clientTLS(nextProtos ...string) *tls.Config {
	_, pool := testCert()
	return &tls.Config{RootCAs: pool, NextProtos: nextProtos}
}

// watchdog fails the test loudly, with every goroutine's stack, if it has
// not finished within d: a hang shows where it hangs instead of running
// into go test's global timeout. Call the returned function when done.
func watchdog(t testing.TB, d time.Duration, what string) (stop func()) {
	timer := time.AfterFunc(d, func() {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		panic("interop: " + t.Name() + ": " + what + " did not finish within " + d.String() + "\n" + string(buf))
	})
	return func() { timer.Stop() }
}
