package netloop_test

import (
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sockopt reads an integer socket option through SyscallConn.
func sockopt(t *testing.T, c any, level, name int) int {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), level, name) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// cloexec reports whether the descriptor behind c has FD_CLOEXEC set.
func cloexec(t *testing.T, c any) bool {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags uintptr
	var errno syscall.Errno
	rc.Control(func(fd uintptr) {
		flags, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFD, 0)
	})
	if errno != 0 {
		t.Fatal(errno)
	}
	return flags&syscall.FD_CLOEXEC != 0
}

func TestSocketOptions(t *testing.T) {
	differential(t, func(t *testing.T, im impl) string {
		ln := listen(t, im, "tcp4")
		s, _ := pipe(t, ln)
		var out []string
		opt := func(what string, level, name int) {
			out = append(out, fmt.Sprintf("%s=%d", what, sockopt(t, s, level, name)))
		}
		opt("nodelay", syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
		opt("keepalive", syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		opt("keepidle", syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
		opt("keepintvl", syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL)
		opt("keepcnt", syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT)
		out = append(out, fmt.Sprintf("listener reuseaddr=%d", sockopt(t, ln, syscall.SOL_SOCKET, syscall.SO_REUSEADDR)))
		if !cloexec(t, s) || !cloexec(t, ln) {
			t.Errorf("descriptors without close-on-exec: conn %v listener %v", cloexec(t, s), cloexec(t, ln))
		}
		type tcpLike interface {
			SetNoDelay(bool) error
			SetKeepAlive(bool) error
			SetKeepAlivePeriod(time.Duration) error
			SetKeepAliveConfig(net.KeepAliveConfig) error
			SetLinger(int) error
			SetReadBuffer(int) error
			SetWriteBuffer(int) error
		}
		tc := s.(tcpLike)
		out = append(out, "SetNoDelay(false): "+errShape(tc.SetNoDelay(false)))
		opt("nodelay", syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
		out = append(out, "SetKeepAlivePeriod(42s): "+errShape(tc.SetKeepAlivePeriod(42*time.Second)))
		opt("keepidle", syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
		out = append(out, "SetKeepAliveConfig: "+errShape(tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 1500 * time.Millisecond, Count: 3})))
		opt("keepidle", syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
		opt("keepintvl", syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL)
		opt("keepcnt", syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT)
		out = append(out, "SetKeepAlive(false): "+errShape(tc.SetKeepAlive(false)))
		opt("keepalive", syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		out = append(out, "SetLinger(0): "+errShape(tc.SetLinger(0)))
		out = append(out, "SetReadBuffer: "+errShape(tc.SetReadBuffer(64<<10)))
		opt("rcvbuf", syscall.SOL_SOCKET, syscall.SO_RCVBUF)
		out = append(out, "SetWriteBuffer: "+errShape(tc.SetWriteBuffer(64<<10)))
		opt("sndbuf", syscall.SOL_SOCKET, syscall.SO_SNDBUF)
		out = append(out, "SetReadBuffer(-1): "+errShape(tc.SetReadBuffer(-1)))
		return strings.Join(out, "\n")
	})
}

func TestListenConfigKeepAlive(t *testing.T) {
	// Negative KeepAlive disables keep-alives on accepted connections.
	differential(t, func(t *testing.T, im impl) string {
		lc := struct{ net.ListenConfig }{}
		_ = lc
		var ln net.Listener
		var err error
		if im.name == "net" {
			ln, err = (&net.ListenConfig{KeepAlive: -1}).Listen(t.Context(), "tcp4", "127.0.0.1:0")
		} else {
			ln, err = netloopListenConfig(-1, net.KeepAliveConfig{}).Listen(t.Context(), "tcp4", "127.0.0.1:0")
		}
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		s, _ := pipe(t, ln)
		out := fmt.Sprintf("keepalive=%d", sockopt(t, s, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE))
		if im.name == "net" {
			ln2, err := (&net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 7 * time.Second, Count: 4}}).Listen(t.Context(), "tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln2.Close()
			ln = ln2
		} else {
			ln2, err := netloopListenConfig(0, net.KeepAliveConfig{Enable: true, Idle: 7 * time.Second, Count: 4}).Listen(t.Context(), "tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln2.Close()
			ln = ln2
		}
		s, _ = pipe(t, ln)
		out += fmt.Sprintf(" keepidle=%d keepcnt=%d keepintvl=%d", sockopt(t, s, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE),
			sockopt(t, s, syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT), sockopt(t, s, syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL))
		return out
	})
}
