// Package uringprobe holds a benchmark, not a library: what sending on many
// connections costs with one write(2) per send against one io_uring_enter
// per batch of sends (Linux only; see uringprobe_linux_test.go). It measures
// how much of a keep-alive request's CPU is the syscall entry itself, the
// lever left once netloop makes one read and one write per request
// (bench/RESULTS.md, "Syscall batching").
package uringprobe
