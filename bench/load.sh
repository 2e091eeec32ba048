#!/usr/bin/env bash
# bench/load.sh: package net against netloop, side by side, on the same server
# program (bench/server), the same load and the same machine.
#
#   bench/load.sh                       # every workload, 10 s per run, 3 rounds
#   DURATION=5 ROUNDS=5 WORKLOADS="http-c50 h2-c50" bench/load.sh
#
# Workloads (WORKLOADS, space-separated; a b c d are accepted as aliases):
#   http-c50    (a) net/http keep-alive GET $URLPATH, wrk -t1 -c50 --latency
#   http-c1000  (b) the same with 1000 connections
#   echo-c50    (c) TCP echo, $MSG-byte ping-pong on 50 connections
#               (bench/echoload -engine $ECHO_ENGINE: uring, one thread
#               driving every connection through io_uring, is cheap enough
#               that package net's server saturates before it; go, a
#               goroutine per connection on package net, saturates first)
#   h2-c50      (d) HTTP/2 with prior knowledge (h2c), h2load -c50 -m10 -t1
#   http-c50-p2, echo-c50-p2
#               the same with GOMAXPROCS=2: server and load tool share both
#               CPUs ($SERVER_CPU and $LOAD_CPU), netloop with its default loops
#   http-c50-busy
#               http-c50 with a CPU-bound goroutine spinning in the server
#               beside the I/O (every P busy: server -burn 1)
#   http-c50-p2-busy
#               http-c50-p2 with two spinning goroutines (server -burn 2)
#   http-c50-pipe, http-c1000-pipe
#               http-c50 / http-c1000 with $PIPE requests pipelined per
#               connection (bench/pipeline.lua): a cheaper load for when
#               wrk saturates its CPU before the server does
#
# Method: the server runs with GOMAXPROCS=1 on CPU $SERVER_CPU, the load tool
# (and perf, strace) on CPU $LOAD_CPU, everything on 127.0.0.1. For each
# workload the impls alternate over $ROUNDS rounds, each going first in
# turn (std netloop, netloop std, ...); every run gets a fresh server,
# $WARMUP seconds of unmeasured load, then $DURATION seconds measured. Per run: throughput and p99 from the load
# tool; server CPU (utime+stime from /proc/PID/stat) and syscalls (perf stat -e
# raw_syscalls:sys_enter -p PID; if perf cannot count, strace -c -f -p PID in
# an extra 3 s pass) over the measured window, divided by the requests done in
# it. A host check (bench/hiccup: two threads spin for 2 s, one per CPU, and
# report the time they did not get) runs before each workload and at the end.
#
# BASE=<git revision> adds a third implementation, "base": netloop as built
# from that revision (git archive of it, same bench/server flags), so that a
# change can be measured against the code before it in the same sitting;
# the three rotate (std base netloop, base netloop std, ...) and the report
# adds the netloop/base ratio.
#
# NETLOOP_ENV and BASE_ENV (VAR=value ..., applied to that impl's server
# only) and NETLOOP_FLAGS and BASE_FLAGS (bench/server flags, after the
# script's own, so they win) set one implementation apart: BASE=HEAD
# BASE_ENV=NETLOOP_BATCH=0 measures batching on against off in one sitting,
# BASE=HEAD BASE_FLAGS="-loops 1" one loop against the default.
#
# Knobs (environment): DURATION (10, max 600), ROUNDS (3), WORKLOADS (all),
# WARMUP (2), LOOPS (1: netloop's ListenConfig.Loops), PIPE (4: requests
# per pipelined batch in *-pipe), URLPATH (/; /big for
# 64 KiB responses), MSG (512), ECHO_ENGINE (uring; go where io_uring
# is unavailable), SERVER_CPU (0), LOAD_CPU (1),
# SYSCALLS=strace (force the fallback), OUT (directory for the per-run TSV
# and the tools' raw output; default a new /tmp/netloop-load.* directory).
#
# The markdown report goes to stdout, progress to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
WORKLOADS=${WORKLOADS:-http-c50 http-c1000 echo-c50 h2-c50}
LOOPS=${LOOPS:-1}
URLPATH=${URLPATH:-/}
MSG=${MSG:-512}
ECHO_ENGINE=${ECHO_ENGINE:-uring}
PIPE=${PIPE:-4}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SYSCALLS=${SYSCALLS:-perf}
BASE=${BASE:-}
NETLOOP_ENV=${NETLOOP_ENV:-}
BASE_ENV=${BASE_ENV:-}
NETLOOP_FLAGS=${NETLOOP_FLAGS:-}
BASE_FLAGS=${BASE_FLAGS:-}

die() {
	echo "load.sh: $*" >&2
	exit 2
}
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

for v in DURATION ROUNDS WARMUP LOOPS MSG SERVER_CPU LOAD_CPU; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer, not '${!v}'"
done
((DURATION >= 1 && DURATION <= 600)) || die "DURATION must be 1..600 seconds"
((ROUNDS >= 1 && ROUNDS <= 50)) || die "ROUNDS must be 1..50"
impls=(std netloop)
if [[ -n $BASE ]]; then
	base_commit=$(git -C "$root" rev-parse --verify --quiet "$BASE^{commit}") || die "BASE '$BASE' is not a commit of this repository"
	impls=(std base netloop)
fi
((WARMUP <= 60)) || die "WARMUP must be at most 60 seconds"
((MSG >= 1 && MSG <= 1 << 20)) || die "MSG must be 1..1048576 bytes"
((PIPE >= 1 && PIPE <= 64)) || die "PIPE must be 1..64"
[[ $ECHO_ENGINE == uring || $ECHO_ENGINE == go ]] || die "ECHO_ENGINE must be uring or go"
[[ $URLPATH == / || $URLPATH == /big ]] || die "URLPATH must be / or /big"
((SERVER_CPU != LOAD_CPU)) || die "SERVER_CPU and LOAD_CPU must differ"
(($(nproc) >= 2)) || die "needs at least 2 CPUs (server on one, load on another)"

# Resolve the workload list (aliases a b c d).
workloads=()
for w in $WORKLOADS; do
	case $w in
	a | http-c50) workloads+=(http-c50) ;;
	b | http-c1000) workloads+=(http-c1000) ;;
	c | echo-c50) workloads+=(echo-c50) ;;
	d | h2-c50) workloads+=(h2-c50) ;;
	http-c50-p2 | echo-c50-p2 | http-c50-busy | http-c50-p2-busy | http-c50-pipe | http-c1000-pipe) workloads+=("$w") ;;
	*) die "unknown workload '$w' (want http-c50 http-c1000 echo-c50 h2-c50 http-c50-p2 echo-c50-p2 http-c50-busy http-c50-p2-busy http-c50-pipe http-c1000-pipe, or a b c d)" ;;
	esac
done
((${#workloads[@]} > 0)) || die "WORKLOADS is empty"

need() { command -v "$1" >/dev/null || die "$1 not found (apt-get install -y $2)"; }
need taskset util-linux
need go golang
[[ " ${workloads[*]} " == *" http-"* ]] && need wrk wrk
[[ " ${workloads[*]} " == *" h2-"* ]] && need h2load nghttp2-client

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
(($(ulimit -n) >= 1200)) || die "open-files limit $(ulimit -n) is too low for 1000 connections"

tmp=$(mktemp -d /tmp/netloop-load-build.XXXXXX)
OUT=${OUT:-$(mktemp -d /tmp/netloop-load.XXXXXX)}
mkdir -p "$OUT"
tsv=$OUT/runs.tsv
rawlog=$OUT/raw.log
: >"$rawlog"
server_pid= perf_pid= strace_pid=
cleanup() {
	for p in $perf_pid $strace_pid $server_pid; do kill "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build ---------------------------------------------------------------------
log "building bench/server, bench/echoload, bench/hiccup, bench/summary"
go build -o "$tmp/" ./bench/server ./bench/echoload ./bench/hiccup ./bench/summary
if [[ -n $BASE ]]; then
	log "building bench/server at BASE=$BASE (${base_commit:0:12})"
	mkdir -p "$tmp/base-src" "$tmp/base"
	git -C "$root" archive "$base_commit" | tar -x -C "$tmp/base-src"
	(cd "$tmp/base-src" && go build -o "$tmp/base/" ./bench/server)
fi

# --- measurement helpers ---------------------------------------------------------
hz=$(getconf CLK_TCK)
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; } # utime+stime, all threads
cpu_busy() { awk -v c="cpu$SERVER_CPU" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; } # server's CPU, all but idle
use_perf=0
if [[ $SYSCALLS != strace ]] && command -v perf >/dev/null &&
	perf stat -x, -e raw_syscalls:sys_enter -- true 2>&1 | grep -Eq '^[0-9]+,.*raw_syscalls:sys_enter'; then
	use_perf=1
fi
if ((use_perf)); then
	syscall_source=perf
else
	command -v strace >/dev/null || die "neither perf (raw_syscalls:sys_enter) nor strace can count syscalls"
	syscall_source=strace
	if [[ $SYSCALLS == strace ]]; then log "SYSCALLS=strace: syscalls come from strace -c -f in an extra 3 s pass per run"
	else log "perf cannot count raw_syscalls:sys_enter here: syscalls come from strace -c -f in an extra 3 s pass per run"; fi
fi

# workload -> mode, tool, conns
wl_mode() { case $1 in echo-*) echo echo ;; *) echo http ;; esac; }
wl_tool() { case $1 in echo-*) echo echoload ;; h2-*) echo h2load ;; *) echo wrk ;; esac; }
wl_conns() { local c=${1#*-c}; echo "${c%%-*}"; }
wl_procs() { case $1 in *-p2 | *-p2-*) echo 2 ;; *) echo 1 ;; esac; }
wl_burn() { case $1 in *-busy) wl_procs "$1" ;; *) echo 0 ;; esac; } # one spinner per P
wl_loadcpus() { case $1 in *-p2 | *-p2-*) echo "$SERVER_CPU,$LOAD_CPU" ;; *) echo "$LOAD_CPU" ;; esac; }
wl_unit() { case $1 in echo-*) echo msg ;; *) echo req ;; esac; }

start_server() { # impl mode workload -> server_pid, addr
	# Empty the output files here, synchronously: the background job's own
	# redirections may happen only after the first look below, which would
	# then find the previous server's "listening on" line.
	: >"$tmp/server.out"
	: >"$tmp/server.err"
	local procs cpus=$SERVER_CPU loops=$LOOPS
	procs=$(wl_procs "$3")
	((procs > 1)) && cpus=$SERVER_CPU,$LOAD_CPU loops=0
	local bin=$tmp/server impl=$1 envs=() flags=()
	case $impl in
	netloop) read -ra envs <<<"$NETLOOP_ENV" && read -ra flags <<<"$NETLOOP_FLAGS" ;;
	base) bin=$tmp/base/server impl=netloop && read -ra envs <<<"$BASE_ENV" && read -ra flags <<<"$BASE_FLAGS" ;;
	esac
	env "${envs[@]}" GOMAXPROCS="$procs" taskset -c "$cpus" "$bin" -impl "$impl" -mode "$2" -addr 127.0.0.1:0 -loops "$loops" \
		-burn "$(wl_burn "$3")" "${flags[@]}" >"$tmp/server.out" 2>"$tmp/server.err" &
	server_pid=$!
	addr=
	for _ in $(seq 100); do
		addr=$(sed -n 's/^listening on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$tmp/server.out")
		[[ -n $addr ]] && return 0
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.1
	done
	log "server -impl $1 -mode $2 did not start:"
	cat "$tmp/server.out" "$tmp/server.err" >&2
	return 1
}

stop_server() {
	[[ -n $server_pid ]] || return 0
	kill -TERM "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
	server_pid=
	[[ -s $tmp/server.err ]] && sed 's/^/server stderr: /' "$tmp/server.err" >>"$rawlog"
	return 0
}

probe() { # workload impl: warn if the server does not answer as expected
	command -v curl >/dev/null || return 0
	local bad= u=http://$addr
	case $1 in
	http-*)
		[[ $(curl -fsS -m 5 "$u/" 2>&1) == "hello world" ]] || bad+=" GET /"
		[[ $(curl -fsS -m 5 "$u/big" 2>/dev/null | wc -c) == 65536 ]] || bad+=" GET /big"
		;;
	h2-*)
		[[ $(curl -fsS -m 5 --http2-prior-knowledge -o /dev/null -w '%{http_version}' "$u/" 2>&1) == 2 ]] || bad+=" h2c GET /"
		;;
	esac
	[[ -z $bad ]] && return 0
	echo "warning: $2 answers wrongly on:$bad" | tee -a "$rawlog" >&2
	{ # what the kernel and the server's descriptor table say about the listener
		echo "-- ss -tan for ${addr##*:}:"
		ss -tan "( sport = :${addr##*:} or dport = :${addr##*:} )" 2>&1 | head -20 || true
		echo "-- /proc/$server_pid/fd:"
		ls -l "/proc/$server_pid/fd" 2>&1 | head -20 || true
	} >>"$rawlog"
}

load() { # workload seconds [h2log] -> $tmp/load.out, $tmp/time.out ("real user sys" of the tool)
	local w=$1 s=$2 conns cpus TIMEFORMAT='%R %U %S'
	conns=$(wl_conns "$w")
	cpus=$(wl_loadcpus "$w")
	case $(wl_tool "$w") in
	wrk)
		local script=() args=()
		[[ $w == *-pipe ]] && script=(-s "$here/pipeline.lua") args=(-- "$PIPE")
		{ time taskset -c "$cpus" wrk -t1 -c"$conns" -d"$s"s --latency "${script[@]}" "http://$addr$URLPATH" "${args[@]}" \
			>"$tmp/load.out" 2>&1; } 2>"$tmp/time.out" || true
		;;
	echoload)
		{ time taskset -c "$cpus" "$tmp/echoload" -engine "$ECHO_ENGINE" -addr "$addr" -c "$conns" -size "$MSG" -d "$s"s \
			>"$tmp/load.out" 2>&1; } 2>"$tmp/time.out" || true
		;;
	h2load)
		local logopt=()
		[[ -n ${3:-} ]] && logopt=(--log-file="$3")
		{ time taskset -c "$cpus" h2load -c "$conns" -m 10 -t 1 -D "$s" "${logopt[@]}" "http://$addr$URLPATH" \
			>"$tmp/load.out" 2>&1; } 2>"$tmp/time.out" || true
		;;
	esac
}

load_stats() { # workload [h2log] -> "ops ops_per_s p99_us errors" from $tmp/load.out
	case $(wl_tool "$1") in
	wrk)
		awk 'function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /m$/) return v * 6e7; if (v ~ /s$/) return v * 1e6; return v }
			/ requests in / { n = $1 } /^Requests\/sec:/ { rps = $2 }
			/^ +99%/ { p99 = us($2) }
			/Socket errors/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
			/Non-2xx/ { err += $NF }
			END { printf "%d %.1f %.1f %d\n", n, rps, p99, err }' "$tmp/load.out"
		;;
	echoload)
		tr ' ' '\n' <"$tmp/load.out" | awk -F= '{ v[$1] = $2 }
			END { printf "%d %s %s %d\n", v["msgs"], v["msgs_per_s"], v["p99_us"], v["conn_errors"] + v["bad_echo"] }'
		;;
	h2load)
		local p99=0
		if [[ -s ${2:-} ]]; then # per-request log: start_us status elapsed_us
			p99=$(cut -f3 "$2" | sort -n | awk '{ v[NR] = $1 } END { if (NR) { i = int(0.99 * (NR - 1)) + 1; print v[i] } else print 0 }')
		fi
		awk -v p99="$p99" '
			/^finished in/ { for (i = 1; i <= NF; i++) if ($(i) ~ /^req\/s/) { rps = $(i - 1) } }
			/^requests:/ { gsub(/,/, ""); ok = $8; err = $10 + $12 + $14 }
			/^status codes:/ { gsub(/,/, ""); non2xx = $5 + $7 + $9 }
			END { printf "%d %.1f %s %d\n", ok, rps, p99, err + non2xx }' "$tmp/load.out"
		;;
	esac
}

strace_pass() { # workload -> "calls ops" from an extra 3 s load under strace
	taskset -c "$LOAD_CPU" strace -c -f -p "$server_pid" -o "$tmp/strace.out" 2>/dev/null &
	strace_pid=$!
	sleep 0.5
	load "$1" 3 "$tmp/h2strace.log"
	kill -INT "$strace_pid" 2>/dev/null || true
	wait "$strace_pid" 2>/dev/null || true
	strace_pid=
	echo "$(awk '$NF == "total" { print $4 }' "$tmp/strace.out") $(load_stats "$1" | cut -d' ' -f1)"
}

# --- one measured run --------------------------------------------------------------
run_one() { # workload impl round
	local w=$1 impl=$2 round=$3 mode unit
	mode=$(wl_mode "$w")
	unit=$(wl_unit "$w")
	start_server "$impl" "$mode" "$w" || {
		printf '%s\t%s\t%s\t-\t-\t-\t-\t-\t-\tFAILED-TO-START\t%s\t-\t-\n' "$w" "$impl" "$round" "$unit" >>"$tsv"
		server_pid=
		return 0
	}
	probe "$w" "$impl"
	((WARMUP > 0)) && load "$w" "$WARMUP"

	local t0 t1 b0 b1 perf_out=$tmp/perf.out h2log=$tmp/h2.log syscalls=
	rm -f "$perf_out" "$h2log"
	if ((use_perf)); then
		taskset -c "$LOAD_CPU" perf stat -x, -e raw_syscalls:sys_enter -p "$server_pid" -o "$perf_out" &
		perf_pid=$!
		sleep 0.3
	fi
	t0=$(cpu_ticks "$server_pid")
	b0=$(cpu_busy)
	load "$w" "$DURATION" "$h2log"
	t1=$(cpu_ticks "$server_pid" 2>/dev/null || echo)
	b1=$(cpu_busy)
	if ((use_perf)); then
		kill -INT "$perf_pid" 2>/dev/null || true
		wait "$perf_pid" 2>/dev/null || true
		perf_pid=
		syscalls=$(awk -F, '/raw_syscalls:sys_enter/ { print $1 }' "$perf_out" 2>/dev/null || true)
	fi
	{
		echo "== $w impl=$impl round=$round addr=$addr"
		cat "$tmp/load.out"
		[[ -f $perf_out ]] && cat "$perf_out"
	} >>"$rawlog"

	if [[ -z $t1 ]] || ! kill -0 "$server_pid" 2>/dev/null; then
		log "!! server $impl died during $w round $round"
		tail -20 "$tmp/server.err" | tee -a "$rawlog" >&2
		printf '%s\t%s\t%s\t-\t-\t-\t-\t-\t-\tSERVER-DIED\t%s\t-\t-\n' "$w" "$impl" "$round" "$unit" >>"$tsv"
		stop_server
		return 0
	fi
	local n rps p99 errs real user sys src=$syscall_source
	read -r n rps p99 errs <<<"$(load_stats "$w" "$h2log")"
	read -r real user sys <"$tmp/time.out"
	if ! ((n > 0)); then # nothing completed: a failed run, kept out of the medians
		log "!! $impl completed no $unit in $w round $round (see $rawlog)"
		printf '%s\t%s\t%s\t-\t-\t-\t-\t-\t-\tNO-%s-DONE\t%s\t-\t-\n' "$w" "$impl" "$round" "${unit^^}" "$unit" >>"$tsv"
		stop_server
		return 0
	fi
	if ! [[ $syscalls =~ ^[0-9]+$ ]]; then # perf gave no count: strace pass
		local calls_ops
		calls_ops=$(strace_pass "$w")
		syscalls=$(awk -v n="$n" '{ printf "%d", ($2 > 0 ? $1 * n / $2 : 0) }' <<<"$calls_ops")
		src=strace
	fi
	stop_server
	awk -v w="$w" -v i="$impl" -v r="$round" -v n="$n" -v rps="$rps" -v p99="$p99" \
		-v ticks=$((t1 - t0)) -v busy=$((b1 - b0)) -v hz="$hz" -v sc="${syscalls:-0}" -v real="$real" -v user="$user" -v sys="$sys" \
		-v e="$errs" -v u="$unit" -v src="$src" \
		'BEGIN { d = (n > 0 ? n : 1e-9)
		# wrk now and then prints a p99 of 0 for a pipelined run (its
		# latency statistics are per batch): no figure, not a zero.
		p = (p99 > 0 || n == 0) ? sprintf("%.0f", p99) : "-"
		printf "%s\t%s\t%s\t%.0f\t%s\t%.2f\t%.2f\t%.0f\t%.0f\t%d\t%s\t%s\t%.0f\n", w, i, r, rps, p,
			ticks / hz / d * 1e6, sc / d, ticks / hz / real * 100, (user + sys) / real * 100, e, u, src,
			busy / hz / real * 100 }' >>"$tsv"
	log "$(tail -1 "$tsv" | tr '\t' ' ')"
}

host_check() { taskset -c "$SERVER_CPU,$LOAD_CPU" "$tmp/hiccup" -threads 2 -d 2s; }

# --- rounds -----------------------------------------------------------------------
printf 'workload\timpl\tround\tops_per_s\tp99_us\tcpu_us_per_op\tsyscalls_per_op\tserver_cpu_pct\tload_cpu_pct\terrors\tunit\tsyscall_source\tserver_cpu_busy_pct\n' >"$tsv"
started=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)
host_checks=()
log "workloads=${workloads[*]} duration=${DURATION}s rounds=$ROUNDS warmup=${WARMUP}s -> $OUT"
for w in "${workloads[@]}"; do
	hc=$(host_check)
	host_checks+=("before $w: $hc (load average $(cut -d' ' -f1-3 /proc/loadavg))")
	log "host check before $w: $hc"
	for ((r = 1; r <= ROUNDS; r++)); do
		k=$(((r - 1) % ${#impls[@]}))
		order=("${impls[@]:k}" "${impls[@]:0:k}") # rotate: each impl goes first in turn
		for impl in "${order[@]}"; do
			run_one "$w" "$impl" "$r"
			sleep 1
		done
	done
done
hc=$(host_check)
host_checks+=("at the end: $hc (load average $(cut -d' ' -f1-3 /proc/loadavg))")
log "host check at the end: $hc"
finished=$(date -u '+%Y-%m-%d %H:%M:%S UTC')

# --- report -------------------------------------------------------------------------
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$root" status --porcelain 2>/dev/null | wc -l)
version_of() { "$@" 2>&1 | head -1 || true; }
{
	if [[ -n $BASE ]]; then
		echo "## bench/load.sh: package net (std) vs netloop, and netloop at BASE=$BASE (${base_commit:0:12})"
	else
		echo "## bench/load.sh: package net (std) vs netloop"
	fi
	echo
	echo "- command (run from \`$root\`): \`DURATION=$DURATION ROUNDS=$ROUNDS WARMUP=$WARMUP WORKLOADS='${workloads[*]}' LOOPS=$LOOPS URLPATH=$URLPATH MSG=$MSG ECHO_ENGINE=$ECHO_ENGINE SERVER_CPU=$SERVER_CPU LOAD_CPU=$LOAD_CPU${BASE:+ BASE=$BASE}${NETLOOP_ENV:+ NETLOOP_ENV='$NETLOOP_ENV'}${BASE_ENV:+ BASE_ENV='$BASE_ENV'}${NETLOOP_FLAGS:+ NETLOOP_FLAGS='$NETLOOP_FLAGS'}${BASE_FLAGS:+ BASE_FLAGS='$BASE_FLAGS'} bench/load.sh\`"
	echo "- date: $started .. $finished"
	echo "- kernel: $(uname -r); nproc: $(nproc); $(go version)"
	echo "- tree: commit $commit, $dirty uncommitted paths (the server is built from the working tree)"
	echo "- tools: $(version_of wrk -v | sed 's/ *Copyright.*//'); $(version_of h2load --version); $(version_of perf --version); syscalls from $syscall_source"
	echo "- server: bench/server, GOMAXPROCS=1, \`taskset -c $SERVER_CPU\`, netloop Loops=$LOOPS, fresh per run; load: \`taskset -c $LOAD_CPU\`; 127.0.0.1 only"
	echo "- workloads: http-c50 = wrk -t1 -c50 GET $URLPATH (keep-alive); http-c1000 = wrk -t1 -c1000; echo-c50 = bench/echoload -engine $ECHO_ENGINE -c 50 -size $MSG; h2-c50 = h2load -c50 -m10 -t1 (h2c prior knowledge, p99 from its per-request log); *-p2 = the same with GOMAXPROCS=2, server and load tool both on CPUs $SERVER_CPU,$LOAD_CPU, netloop with its default loops (2); http-c50-busy = http-c50 with one CPU-bound goroutine spinning in the server (server -burn 1); http-c50-p2-busy = http-c50-p2 with two (-burn 2); *-pipe = the same with $PIPE requests pipelined per connection (bench/pipeline.lua; p99 per batch)"
	echo "- load average before: $loadavg_before"
	echo "- host check (bench/hiccup: 2 threads spin 2 s, one per CPU; lost_pct = time each did not run; near 0 = a quiet host):"
	for h in "${host_checks[@]}"; do echo "  - $h"; done
	echo
	"$tmp/summary" "$tsv"
	echo
	echo "Raw per-run rows and tool output: $OUT (runs.tsv, raw.log)."
} | tee "$OUT/report.md"
