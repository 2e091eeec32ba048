//go:build (amd64 || arm64) && !netloop_stdnet

package netloop_test

import (
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/netloop/netloop"
	"golang.org/x/sys/unix"
)

// TestAcceptWithoutGetsockopt: accepting a connection makes no getsockopt,
// as package net makes none. x/sys's Accept4 and Getsockname ask every IPv4
// and IPv6 socket for SO_PROTOCOL while decoding its address, two syscalls
// per connection more than package net. A child process forbids getsockopt
// with a seccomp filter and accepts connections on IPv4 and IPv6: with
// x/sys decoding the addresses, Accept fails there.
func TestAcceptWithoutGetsockopt(t *testing.T) {
	out, err := runChild(t, "TestAcceptWithoutGetsockoptChild", time.Minute, "NETLOOP_SECCOMP_CHILD=1")
	if err == nil && strings.Contains(out, "--- SKIP: TestAcceptWithoutGetsockoptChild") {
		t.Skipf("the child could not install its filter:\n%s", out)
	}
	if err != nil || !strings.Contains(out, "--- PASS: TestAcceptWithoutGetsockoptChild") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// TestAcceptWithoutGetsockoptChild is the child process of
// TestAcceptWithoutGetsockopt.
func TestAcceptWithoutGetsockoptChild(t *testing.T) {
	if os.Getenv("NETLOOP_SECCOMP_CHILD") != "1" {
		t.Skip("runs as the child of TestAcceptWithoutGetsockopt")
	}
	type pair struct {
		ln net.Listener
		c  net.Conn
	}
	var pairs []pair
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		ln, err := netloop.Listen("tcp", addr)
		if err != nil {
			if addr == "[::1]:0" {
				t.Logf("no IPv6 loopback: %v", err)
				continue
			}
			t.Fatal(err)
		}
		defer ln.Close()
		// Dial before the filter: package net's connect reads SO_ERROR.
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		pairs = append(pairs, pair{ln, c})
	}
	forbidGetsockopt(t)
	if _, err := unix.GetsockoptInt(0, unix.SOL_SOCKET, unix.SO_TYPE); err != unix.EPERM {
		t.Fatalf("getsockopt under the filter: %v, want EPERM", err)
	}
	for _, p := range pairs {
		s, err := p.ln.Accept()
		if err != nil {
			t.Fatalf("Accept with getsockopt forbidden: %v", err)
		}
		defer s.Close()
		if s.RemoteAddr().String() != p.c.LocalAddr().String() || s.LocalAddr().String() != p.c.RemoteAddr().String() {
			t.Fatalf("accepted %v <- %v; dialled %v -> %v", s.LocalAddr(), s.RemoteAddr(), p.c.LocalAddr(), p.c.RemoteAddr())
		}
		s.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := p.c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("read %q, %v", buf, err)
		}
	}
}

// forbidGetsockopt installs, for every thread of the process, a seccomp
// filter failing getsockopt with EPERM.
func forbidGetsockopt(t *testing.T) {
	arch := uint32(unix.AUDIT_ARCH_X86_64)
	if runtime.GOARCH == "arm64" {
		arch = unix.AUDIT_ARCH_AARCH64
	}
	const (
		offNr   = 0 // struct seccomp_data: int nr; __u32 arch; ...
		offArch = 4
	)
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: offArch},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 1, Jf: 0, K: arch},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: offNr},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: unix.SYS_GETSOCKOPT},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	// A kernel or sandbox without seccomp filters skips the test (the
	// machines this project is tested on have them).
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		t.Skipf("PR_SET_NO_NEW_PRIVS: %v", err)
	}
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog))); e != 0 {
		if e == unix.ENOSYS || e == unix.EINVAL || e == unix.EPERM || e == unix.EACCES {
			t.Skipf("seccomp: %v", e)
		}
		t.Fatalf("seccomp: %v", e)
	}
	runtime.KeepAlive(prog)
}
