package interop

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/grpclog"
	"google.golang.org/grpc/interop"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/orca"
)

// grpc-go's interop test cases report failure through grpclog's Fatal,
// which exits the process. TestMain installs a logger whose Fatal panics
// with a fatal instead; runCase turns that into a test failure.
type fatal string

type testLogger struct{}

func (testLogger) Info(...any)                  {}
func (testLogger) Infoln(...any)                {}
func (testLogger) Infof(string, ...any)         {}
func (testLogger) Warning(...any)               {}
func (testLogger) Warningln(...any)             {}
func (testLogger) Warningf(string, ...any)      {}
func (testLogger) Error(args ...any)            { fmt.Fprintln(os.Stderr, args...) }
func (testLogger) Errorln(args ...any)          { fmt.Fprintln(os.Stderr, args...) }
func (testLogger) Errorf(f string, args ...any) { fmt.Fprintf(os.Stderr, f+"\n", args...) }
func (testLogger) Fatal(args ...any)            { panic(fatal(fmt.Sprint(args...))) }
func (testLogger) Fatalln(args ...any)          { panic(fatal(fmt.Sprintln(args...))) }
func (testLogger) Fatalf(f string, args ...any) { panic(fatal(fmt.Sprintf(f, args...))) }
func (testLogger) V(int) bool                   { return false }

func TestMain(m *testing.M) {
	grpclog.SetLoggerV2(testLogger{})
	os.Exit(m.Run())
}

// catch runs fn, an interop test case, and returns its failure, if any.
func catch(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatal)
			if !ok {
				panic(r)
			}
			err = errors.New(string(f))
		}
	}()
	fn()
	return nil
}

// grpcTransports are the ways a gRPC server sits on a listener.
var grpcTransports = []struct {
	name    string
	network string
	tls     bool // client uses TLS credentials
	server  func(net.Listener) (net.Listener, []grpc.ServerOption)
}{
	{"tcp", "tcp", false, func(ln net.Listener) (net.Listener, []grpc.ServerOption) {
		return ln, nil
	}},
	{"tls", "tcp", true, func(ln net.Listener) (net.Listener, []grpc.ServerOption) {
		return ln, []grpc.ServerOption{grpc.Creds(credentials.NewTLS(serverTLS()))}
	}},
	// TLS terminated by crypto/tls's listener, gRPC itself in plaintext.
	{"tls.NewListener", "tcp", true, func(ln net.Listener) (net.Listener, []grpc.ServerOption) {
		return tls.NewListener(ln, serverTLS("h2")), nil
	}},
	{"unix", "unix", false, func(ln net.Listener) (net.Listener, []grpc.ServerOption) {
		return ln, nil
	}},
}

// grpcServer is the interop server as grpc-go's interop/server runs it
// (with ORCA), on a listener of the named backend.
type grpcServer struct {
	target string
	dial   []grpc.DialOption
}

func startGRPC(t *testing.T, backend string, fn listenFunc, transport int) *grpcServer {
	tr := grpcTransports[transport]
	ln := listen(t, backend, fn, tr.network)
	sln, opts := tr.server(ln)
	srv := grpc.NewServer(append(opts, orca.CallMetricsServerOption(nil))...)
	recorder := orca.NewServerMetricsRecorder()
	if err := orca.Register(srv, orca.ServiceOptions{ServerMetricsProvider: recorder}); err != nil {
		t.Fatal(err)
	}
	testgrpc.RegisterTestServiceServer(srv, interop.NewTestServer(interop.NewTestServerOptions{MetricsRecorder: recorder}))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sln) }()
	t.Cleanup(func() {
		defer watchdog(t, 30*time.Second, "grpc GracefulStop")()
		srv.GracefulStop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	s := &grpcServer{target: ln.Addr().String()}
	if tr.network == "unix" {
		s.target = "unix://" + ln.Addr().String()
	}
	creds := insecure.NewCredentials()
	if tr.tls {
		creds = credentials.NewTLS(clientTLS())
	}
	s.dial = []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	return s
}

func (s *grpcServer) client(t testing.TB, extra ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(s.target, append(s.dial, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// orcaServiceConfig selects the LB policy grpc-go's interop package
// registers for the ORCA test cases.
const orcaServiceConfig = `{"loadBalancingConfig": [{"test_backend_metrics_load_balancer": {}}]}`

// TestGRPCInterop runs grpc-go's interop test cases, as its interop client
// does, against its interop server on each backend and transport. Left out:
// the cases that need Google credentials or a load balancer, and orca_oob
// (the server would need a grpc-internal hook to report more often than
// every 30 s).
func TestGRPCInterop(t *testing.T) {
	for _, b := range backends {
		for i, tr := range grpcTransports {
			t.Run(b.name+"/"+tr.name, func(t *testing.T) {
				defer watchdog(t, 2*time.Minute, "interop cases")()
				s := startGRPC(t, b.name, b.listen, i)
				cc := s.client(t)
				tc := testgrpc.NewTestServiceClient(cc)
				ctx := t.Context()
				soak := func(channel bool) {
					cfg := interop.SoakTestConfig{
						RequestSize:                      271828,
						ResponseSize:                     314159,
						PerIterationMaxAcceptableLatency: 5 * time.Second,
						OverallTimeout:                   60 * time.Second,
						ServerAddr:                       s.target,
						NumWorkers:                       2,
						Iterations:                       10,
						ChannelForTest:                   func() (*grpc.ClientConn, func()) { return cc, func() {} },
					}
					if channel {
						cfg.ChannelForTest = func() (*grpc.ClientConn, func()) {
							cc, err := grpc.NewClient(s.target, s.dial...)
							if err != nil {
								panic(fatal(err.Error()))
							}
							return cc, func() { cc.Close() }
						}
					}
					ctx, cancel := context.WithTimeout(ctx, cfg.OverallTimeout)
					defer cancel()
					interop.DoSoakTest(ctx, cfg)
				}
				gz := grpc.UseCompressor(gzip.Name)
				cases := []struct {
					name string
					run  func()
				}{
					{"empty_unary", func() { interop.DoEmptyUnaryCall(ctx, tc) }},
					{"large_unary", func() { interop.DoLargeUnaryCall(ctx, tc) }},
					{"large_unary_gzip", func() { interop.DoLargeUnaryCall(ctx, tc, gz) }},
					{"client_streaming", func() { interop.DoClientStreaming(ctx, tc) }},
					{"server_streaming", func() { interop.DoServerStreaming(ctx, tc) }},
					{"ping_pong", func() { interop.DoPingPong(ctx, tc) }},
					{"ping_pong_gzip", func() { interop.DoPingPong(ctx, tc, gz) }},
					{"empty_stream", func() { interop.DoEmptyStream(ctx, tc) }},
					{"timeout_on_sleeping_server", func() { interop.DoTimeoutOnSleepingServer(ctx, tc) }},
					{"cancel_after_begin", func() { interop.DoCancelAfterBegin(ctx, tc) }},
					{"cancel_after_first_response", func() { interop.DoCancelAfterFirstResponse(ctx, tc) }},
					{"status_code_and_message", func() { interop.DoStatusCodeAndMessage(ctx, tc) }},
					{"special_status_message", func() { interop.DoSpecialStatusMessage(ctx, tc) }},
					{"custom_metadata", func() { interop.DoCustomMetadata(ctx, tc) }},
					{"unimplemented_method", func() { interop.DoUnimplementedMethod(ctx, cc) }},
					{"unimplemented_service", func() {
						interop.DoUnimplementedService(ctx, testgrpc.NewUnimplementedServiceClient(cc))
					}},
					{"orca_per_rpc", func() {
						occ := s.client(t, grpc.WithDefaultServiceConfig(orcaServiceConfig))
						interop.DoORCAPerRPCTest(ctx, testgrpc.NewTestServiceClient(occ))
					}},
					{"rpc_soak", func() { soak(false) }},
					{"channel_soak", func() { soak(true) }},
				}
				for _, c := range cases {
					t.Run(c.name, func(t *testing.T) {
						if err := catch(c.run); err != nil {
							t.Fatal(err)
						}
					})
				}
			})
		}
	}
}

// TestGRPCConcurrent runs interop cases from many goroutines at once over
// several channels, so that streams of different calls interleave on each
// connection and connections on each loop.
func TestGRPCConcurrent(t *testing.T) {
	const (
		channels   = 4
		goroutines = 16
		rounds     = 4
	)
	for _, b := range backends {
		for _, i := range []int{0, 1} { // tcp, tls
			t.Run(b.name+"/"+grpcTransports[i].name, func(t *testing.T) {
				defer watchdog(t, 2*time.Minute, "concurrent calls")()
				s := startGRPC(t, b.name, b.listen, i)
				var tcs [channels]testgrpc.TestServiceClient
				for j := range tcs {
					tcs[j] = testgrpc.NewTestServiceClient(s.client(t))
				}
				ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
				defer cancel()
				var wg sync.WaitGroup
				for g := range goroutines {
					wg.Go(func() {
						tc := tcs[g%channels]
						for range rounds {
							for _, fn := range []func(){
								func() { interop.DoLargeUnaryCall(ctx, tc) },
								func() { interop.DoPingPong(ctx, tc) },
								func() { interop.DoServerStreaming(ctx, tc) },
								func() { interop.DoClientStreaming(ctx, tc) },
								func() { interop.DoCancelAfterFirstResponse(ctx, tc) },
								func() { interop.DoEmptyUnaryCall(ctx, tc) },
							} {
								if err := catch(fn); err != nil {
									t.Errorf("goroutine %d: %v", g, err)
									return
								}
							}
						}
					})
				}
				wg.Wait()
			})
		}
	}
}
