// Package uringprobe holds a benchmark, not a library: what sending on many
// connections costs with one write(2) per send against one io_uring_enter
// per batch of sends through poll.Ring, the batches the loops make (Linux
// only; see uringprobe_linux_test.go). It measured the lever before the
// loops used it (bench/RESULTS.md, "Syscall batching") and keeps the
// syscall side of it visible apart from the scheduling around it.
package uringprobe
