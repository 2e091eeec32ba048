// Package loop is netloop's reactor: a process-wide group of event loops,
// the descriptor table, per-direction readiness, and the parking of
// goroutines until a descriptor is ready, a deadline passes or it is closed.
//
// It performs no I/O on sockets and never calls user code; the root package
// does the syscalls and asks this package when to try and when to wait. No
// operating-system names appear here: the poller lives in package poll.
//
// Only the root netloop package imports it. Everything here is an
// implementation detail of netloop and may change in any release.
//
// # How a loop waits
//
// A loop is an ordinary goroutine. It does not block in epoll_wait (or
// kevent) on a thread of its own: its poller's descriptor is itself
// pollable, so the loop hands it to the Go runtime (os.NewFile plus
// RawConn.Read) and parks like any goroutine until the poller has events,
// then fetches them with a non-blocking wait. This avoids the scheduler
// stall that a loop blocked in a syscall causes (it holds the P, and
// goroutines it has just readied wait until sysmon retakes it), costs no
// extra thread per loop, and makes stopping a loop as simple as closing the
// file. The sockets themselves are never registered with the runtime.
//
// The price, measured (bench/RESULTS.md): each wake-up costs two
// epoll_waits, the runtime's on the poller and the loop's own, and one
// goroutine hop more than package net, which shows on a single
// connection's ping-pong. Under load, batches amortise both, and readers
// park without the read(2) that package net spends on EAGAIN. A full batch
// is followed by runtime.Gosched, so that a burst on thousands of
// connections does not queue all of them ahead of a later event.
//
// # When every P is busy
//
// If goroutines that never block hold every P, the runtime consults its
// poller only from sysmon (every 10 ms), which puts what it wakes on the
// global run queue, after which the P takes the preempted hog along with
// it. Package net's readers are woken there directly and run ahead of the
// hog; a loop woken there would wake its readers into the P's own queue,
// behind the hog, and they would wait one more time slice (measured: 0.6x
// package net's requests per second and 1.8x its p99 with one spinning
// goroutine at GOMAXPROCS=1). So the loop times its waits on a timer: timers
// fire at the next scheduling point, which a run queue of goroutines that
// block reaches at once and a goroutine that runs on does not. After a
// wake-up from the runtime's poller that came 5 ms or more after the loop
// parked (idle or starved: it cannot tell yet), it arms a 100 µs timer
// (time.AfterFunc) and parks as usual; if that timer's callback runs 5 ms
// late, or later on any of its own timer waits do, then for 20 ms after the
// last such overrun the loop polls on a 100 µs timer instead of parking in
// the runtime's poller: at the hog's next preemption the timer makes the
// loop the P's next goroutine, ahead of the hog, and the readers it wakes run
// before the hog does. (Timing a runtime.Gosched instead was tried: it also overruns behind
// a long run queue, and turned HTTP/2 load with 500 streams into false
// alarms that doubled its p99.) Only with GOMAXPROCS=1: with more Ps a
// loop's timer fires only at its own P's scheduling points, while sysmon's
// wake-ups reach whichever P is preempted first, and with two spinning
// goroutines at GOMAXPROCS=2 timers measured 3.8-4.9k requests/s against
// 6.2-6.8k without them (package net 7.4-8.0k; see bench/RESULTS.md). An
// idle server pays one timer and its callback after each quiet spell of
// 5 ms or more, and stays in the poller meanwhile (sleeping on the probe
// instead cost the next event 1.1 ms: an idle P sleeps at least 1 ms in
// epoll_wait); a busy one that is not starved never leaves the poller.
//
// A starved loop also leaves its readers trusting stale readiness: a reader
// that finished a request parks because the loop has not yet seen the next
// one, which may have arrived milliseconds ago, where package net's reader
// would read it at once. So for 200 ms after a starved wait (any
// GOMAXPROCS; with more than one P the loop keeps probing while it lasts),
// a goroutine about to park first polls the loop's poller itself if nobody
// has for 50 µs and every goroutine the latest batch woke has run (an
// assist: one at a time per loop, through a second handle on the poller
// with a batch of its own) and dispatches what it finds; the readers it
// wakes run before the P goes back to the hog. Measured with wrk -c50,
// binaries alternating, medians of 3: one spinning goroutine at
// GOMAXPROCS=1, 5.9k requests/s against 5.2k without (package net 2.5k);
// two at GOMAXPROCS=2, 6.8k against 5.8k (package net 7.0-8.2k).
//
// Both conditions guard long run queues. Without the starvation gate,
// polls from every parking goroutine keep refilling the P's local run
// queue, and with 1000 connections what overflowed to the global queue
// waited (p99 1.3 s instead of 40 ms). Without waiting for the batch, a few
// genuinely late waits (garbage collection, accept bursts) opened assist
// windows in which thousands of assists queued goroutines ahead of hundreds
// of others (p99 101-180 ms in two runs of three, package net 34 ms). And a
// late wait counts as starved only if no goroutine of the loop parked in
// the 2.5 ms before it (parks are stamped: a descriptor's first, then one
// in 16; registrations too, for accept bursts): a long run queue
// also makes the loop late, since the next-goroutine slot a timer wakes it
// into goes to every goroutine readied after it, but its goroutines keep
// parking; taking that for starvation let assists keep it going (p99
// 1.26 s, once in three runs). Nor does a late probe count if, after it
// was due, the process used less CPU time than a quarter of the lateness
// (getrusage, read when the probe is armed and when a late one fires,
// except within 20 ms of a starved wait, where a hog keeps making waits
// late): then the kernel kept the process off the CPU (another process
// on its core, a CPU quota, a host pause), no goroutine of its own ran
// ahead of the loop, and timers and assists would only add work
// (measured: with a busy loop of another process on the same core, 2-4
// false starved waits in each 1 s run of the root package's
// TestLongRunQueueIsNotStarvation, none in 20 runs with the check; a
// goroutine that computes uses as much CPU as the probe is late, 17.6 ms
// for 17.5 ms in TestEveryPBusy). With more than one P the check is
// coarser: it discounts what every P could use before the probe is due,
// and counts what the other Ps use after.
//
// Two more things keep a starved loop's readers level with package net's
// (an execution trace of GOMAXPROCS=2 with two spinning goroutines showed
// where they lagged). First, package net's reader that has written a reply
// tries read(2) before it parks, and a client woken by that reply on the
// same CPU has often sent its next request by then, so one goroutine
// serves request after request while it holds the P; ours parked on the
// short read that had proved the socket empty before the reply. So while
// the loop is starved, with more than one P, a short read followed by a
// write no longer proves anything (Desc.ReadDrained; a reader that wrote
// nothing, a slow-loris peer's, still parks without a read). Second, with
// more than one P, the goroutines a starved loop wakes are woken one after
// another, each by the one before (relay.go): every goroutine a loop wakes
// lands behind the hog the P took from the global queue with the loop,
// except the last, which takes the P's next-goroutine slot, and a relay
// hands that slot on. And each goroutine so woken yields once, to the
// global run queue (Loop.spread): a P whose spinner sysmon preempts finds
// the spinner again on the global queue before it would steal from the
// loop's P, so without the yield the loop's P serves every connection
// while the other spins; from the global queue both Ps take them, as they
// take package net's readers.
// Measured with wrk -c50 and two spinning goroutines at GOMAXPROCS=2
// (bench/RESULTS.md, 2026-11-24): the first 1.06-1.08x the requests of the
// build without it, the relay 1.02-1.06x and 0.79-0.93x the p99 on top,
// the yield 1.02-1.04x and 0.80-0.90x the p99 on top of both; 0.76-0.99x
// package net's requests across sittings (0.72-0.82x before), and a p99
// still 1.3-1.8x package net's.
//
// So now, with more than one P and within assistHold of a starved wait, a
// reader that finds its socket empty waits in the runtime's poller, as
// package net's does (Desc.ParkInRuntime; the root package waits on a
// duplicate of the socket, which the runtime's poller can own:
// rtpark_poll.go). sysmon's poll then puts the reader itself on the
// global run queue, ahead of the hog it preempts, and the loop's turn,
// the relay and the yield leave the reader's path. Measured the same way
// (bench/RESULTS.md, 2026-12-07 evening): 1.00-1.06x package net's
// requests and 0.92-0.99x its p99 in three sittings, against 0.95x and
// 1.34x for the build before. The relay and the yield remain for the
// readers that parked in the loop before it was seen to be starved.
//
// # Batched reads and writes
//
// Once a loop reads one request and writes one reply per syscall, the
// syscall entries themselves are a fair part of a request's CPU (about
// 1.3 µs each on the development VM, even for getpid). On Linux a loop
// therefore makes the reads and the writes of one batch of events with
// one io_uring_enter each (recv.go, send.go, poll/uring_linux.go), every
// one a non-blocking IORING_OP_RECV or IORING_OP_SEND with MSG_DONTWAIT,
// which the kernel completes during the submission with exactly what
// read(2) or write(2) on the non-blocking socket would return (bytes, 0 at
// end of stream, EAGAIN, ...).
//
// Reads: a reader that parks because its socket is known empty leaves an
// offer in its Desc (WaitReadInto): its buffer, or for a small read word
// that it wants a pooled buffer, which the loop takes only when data
// comes, so an idle reader holds none. A read event claims the offer (an
// atomic state: open, claimed, done); after dispatching the batch the loop
// reads for every claimed offer and wakes the readers with the results
// (a reader waits for its event or for its offer to be claimed, whichever
// it sees first: a loop held up between an event and its claim may claim
// an offer made after the event, at a sequence that already counts it),
// which they then treat exactly as the results of their own syscall (the
// read sequence loaded before the loop's read comes with it, for
// SetReadDrained). A reader woken otherwise (deadline, Close) withdraws
// its offer, or, if the loop claimed it, waits the few microseconds until
// the loop has read and returns those bytes: they are the reader's. The
// reader holds its reference to the descriptor throughout, so the loop
// never reads a closed one. Offers are pooled, and everything the loop
// needs is in the offer itself (descriptor, buffer, whom to wake): an
// offer the loop finds in a Desc after its reader withdrew it and another
// reader took it from the pool is read and answered for that other
// reader, correctly.
//
// Writes: after dispatching two events or more the loop sets collecting
// and yields the P (runtime.Gosched puts it on the global run queue,
// behind the goroutines it has just readied); each of those that writes
// at most SendMax bytes meanwhile queues its bytes and parks; when the
// loop runs again it sends them all and wakes each writer with its
// result, then collects again for the writes those make next (a header,
// then a body), until a round brings none (at most four rounds). Write
// still returns only when its bytes are in the kernel (invariant 5),
// holds its reference to the descriptor throughout and keeps its count
// and error semantics: a short send continues, EAGAIN parks for
// writability, both in the caller's own Write loop. A writer waits until
// the goroutines ahead of the loop have run, which is why a starved loop
// (a goroutine holding the P) does not collect, and why a yield that kept
// the loop off the P for 5 ms or more stops it collecting until a probe
// of 2.5 ms has fired: a hog that runs again before the probe is due makes
// it fire late at the hog's preemption, and that marks the loop starved
// unless goroutines of the loop kept parking meanwhile (writers waiting in
// a batch stamp too) or the process was off the CPU.
//
// Where io_uring is missing, or does not complete MSG_DONTWAIT receives
// and sends at submission (checked once per loop, on an empty and a full
// socket), or a submission fails, every read and write is its caller's
// own syscall again; NETLOOP_BATCH=0 in the environment turns
// batching off. A batch whose buffers exceed 1 MiB is submitted with the
// scheduler hand-off, as large reads and writes are. Measured in
// bench/RESULTS.md ("Batched reads and writes").
//
// # Lifecycle
//
// The group starts with the first Register and stops, closing every poller
// and ending every loop goroutine, when the last registered descriptor is
// destroyed; the next Register starts it again.
package loop
