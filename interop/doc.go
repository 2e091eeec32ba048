// Package interop holds netloop's interoperability tests: real protocol
// stacks (gRPC with grpc-go's own interop test cases, WebSockets over
// net/http's Hijack, HTTP/2 under h2load) run on both net.Listen and
// netloop.Listen, which must behave the same.
//
// It is a separate module so that its heavy dependencies never enter
// netloop's own go.mod. From this directory:
//
//	go test -race -count=1 ./...   # or ./run.sh, which CI calls
//
// The examples people copy live here too when they need a dependency:
// examples/grpc and examples/websocket.
package interop
