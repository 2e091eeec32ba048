#!/usr/bin/env bash
# bench/peers.sh: TCP echo on the shared harness's servers (package net,
# netloop, cloudwego/netpoll, gnet, nbio: ../shared/bench/cmd/server, built
# with this checkout as netloop) under bench/echoload -engine uring, the
# client that is cheap enough for the servers to set the pace (the shared
# harness's own echoload saturates its core first, so there every stack ties).
#
#   bench/peers.sh                                  # 3 rounds of 8 s, every impl
#   ROUNDS=5 IMPLS="std netloop netpoll" bench/peers.sh
#
# Method as in bench/load.sh: server GOMAXPROCS=1 on CPU $SERVER_CPU with
# -loops 1, echoload (50 connections, 512-byte messages) on CPU $LOAD_CPU,
# 127.0.0.1 only; impls rotate, each first in turn; a fresh server per run,
# 2 s of unmeasured load, then $SECS s measured. Server CPU from
# /proc/PID/stat, syscalls from perf stat -e raw_syscalls:sys_enter over
# the measured window. Prints every run, then medians and ratios to std.
#
# Knobs: ROUNDS (3), SECS (8, max 600), IMPLS (std netloop netpoll gnet
# nbio), CONNS (50), MSG (512), SHARED (../shared/bench), SERVER_CPU (0),
# LOAD_CPU (1).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"
ROUNDS=${ROUNDS:-3} SECS=${SECS:-8} CONNS=${CONNS:-50} MSG=${MSG:-512}
IMPLS=${IMPLS:-std netloop netpoll gnet nbio}
SHARED=${SHARED:-$root/../shared/bench}
SERVER_CPU=${SERVER_CPU:-0} LOAD_CPU=${LOAD_CPU:-1}

die() {
	echo "peers.sh: $*" >&2
	exit 2
}
for v in ROUNDS SECS CONNS MSG SERVER_CPU LOAD_CPU; do
	[[ ${!v} =~ ^(0|[1-9][0-9]*)$ ]] || die "$v must be a non-negative integer, not '${!v}'"
done
((ROUNDS >= 1 && ROUNDS <= 50 && SECS >= 1 && SECS <= 600)) || die "ROUNDS 1..50, SECS 1..600"
((CONNS >= 1 && CONNS <= 10000 && MSG >= 8 && MSG <= 1 << 20)) || die "CONNS 1..10000, MSG 8..1048576"
((SERVER_CPU != LOAD_CPU)) || die "SERVER_CPU and LOAD_CPU must differ"
[[ -d $SHARED/cmd/server ]] || die "no shared harness at $SHARED (set SHARED)"
SHARED=$(cd "$SHARED" && pwd)
command -v perf >/dev/null || die "perf not found (apt-get install -y linux-perf)"

tmp=$(mktemp -d /tmp/netloop-peers.XXXXXX)
server_pid= perf_pid=
cleanup() {
	for p in $perf_pid $server_pid; do kill "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "[$(date +%H:%M:%S)] building $SHARED/cmd/server with netloop from $root, and bench/echoload" >&2
(cd "$tmp" && go work init "$SHARED" "$root")
(cd "$SHARED" && GOWORK=$tmp/go.work go build -tags netloop -o "$tmp/server" ./cmd/server)
go build -o "$tmp/" ./bench/echoload

hz=$(getconf CLK_TCK)
ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
kv() { tr ' ' '\n' <"$tmp/load.out" | awk -F= -v k="$1" '$1 == k { print $2 }'; }

read -r -a impls <<<"$IMPLS"
n=${#impls[@]}
rows=$tmp/rows.tsv
: >"$rows"
printf 'impl\tround\tmsg_per_s\tp50_us\tp99_us\tcpu_us_per_msg\tsyscalls_per_msg\tload_cpu_pct\terrors\n'
for round in $(seq "$ROUNDS"); do
	for k in $(seq 0 $((n - 1))); do
		impl=${impls[$(((k + round - 1) % n))]}
		# A fixed port: some servers print the address before it is bound.
		addr=127.0.0.1:$((20000 + RANDOM % 20000))
		GOMAXPROCS=1 taskset -c "$SERVER_CPU" "$tmp/server" -impl "$impl" -mode echo -addr "$addr" -loops 1 >"$tmp/server.out" 2>&1 &
		server_pid=$!
		for _ in $(seq 50); do
			grep -q listening "$tmp/server.out" && break
			kill -0 "$server_pid" 2>/dev/null || break
			sleep 0.1
		done
		sleep 0.2
		if ! grep -q listening "$tmp/server.out" || ! kill -0 "$server_pid" 2>/dev/null; then
			echo "peers.sh: server -impl $impl did not start on $addr:" >&2
			sed 's/^/  /' "$tmp/server.out" >&2
			kill "$server_pid" 2>/dev/null || true
			wait "$server_pid" 2>/dev/null || true
			server_pid=
			printf '%s\t%d\tFAILED\n' "$impl" "$round"
			continue
		fi
		taskset -c "$LOAD_CPU" "$tmp/echoload" -engine uring -addr "$addr" -c "$CONNS" -size "$MSG" -d 2s >/dev/null 2>&1 || true
		t0=$(ticks "$server_pid")
		taskset -c "$LOAD_CPU" perf stat -x, -e raw_syscalls:sys_enter -p "$server_pid" -o "$tmp/perf.out" &
		perf_pid=$!
		{ TIMEFORMAT='%R %U %S' && time taskset -c "$LOAD_CPU" "$tmp/echoload" -engine uring -addr "$addr" \
			-c "$CONNS" -size "$MSG" -d "${SECS}s" >"$tmp/load.out" 2>&1; } 2>"$tmp/time.out" || true
		t1=$(ticks "$server_pid")
		kill -INT "$perf_pid" 2>/dev/null || true
		wait "$perf_pid" 2>/dev/null || true
		perf_pid=
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
		server_pid=
		sc=$(awk -F, '/raw_syscalls:sys_enter/ { print $1 }' "$tmp/perf.out")
		read -r real user sys <"$tmp/time.out" || true
		msgs=$(kv msgs) errs=$(($(kv conn_errors || true) + 0))
		errs=$((errs + $(kv bad_echo || true) + 0))
		if [[ -z $msgs || $msgs == 0 ]]; then
			echo "peers.sh: impl $impl round $round: no round trip:" >&2
			sed 's/^/  /' "$tmp/load.out" >&2
			printf '%s\t%d\tFAILED\n' "$impl" "$round"
			continue
		fi
		# perf counted from before the measured load to after it (the
		# connections' setup too): its share per message is an upper bound.
		awk -v i="$impl" -v r="$round" -v m="$msgs" -v mps="$(kv msgs_per_s)" -v p50="$(kv p50_us)" \
			-v p99="$(kv p99_us)" -v dt=$((t1 - t0)) -v hz="$hz" -v sc="${sc:-0}" -v u="${user:-0}" -v s="${sys:-0}" -v e="${real:-1}" \
			-v err="$errs" 'BEGIN {
				printf "%s\t%d\t%.0f\t%.1f\t%.1f\t%.2f\t%.2f\t%.0f\t%d\n", i, r, mps, p50, p99, dt / hz * 1e6 / m, sc / m, (u + s) / e * 100, err }' |
			tee -a "$rows"
	done
done

echo
echo "medians over $ROUNDS rounds (ratio to std): msg/s, p99 µs, server CPU µs/msg, syscalls/msg"
for impl in "${impls[@]}"; do
	for col in 3 5 6 7; do
		awk -F'\t' -v i="$impl" -v c="$col" '$1 == i { print $c }' "$rows" | sort -g |
			awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
	done | paste -sd' ' | sed "s/^/$impl /"
done >"$tmp/med.txt"
awk 'NR == FNR { if ($1 == "std") for (c = 2; c <= 5; c++) b[c] = $c; next }
	{ printf "%-8s", $1; for (c = 2; c <= 5; c++) printf "  %10s (%s)", $c, (b[c] > 0 ? sprintf("%.2f", $c / b[c]) : "-"); print "" }' "$tmp/med.txt" "$tmp/med.txt"
