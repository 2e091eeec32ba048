#!/usr/bin/env bash
# bench/stall.sh: repeat short GOMAXPROCS=2 echo runs against netloop with
# the load tool on the same two CPUs, and report every run in which a
# connection stalls (echoload still waiting 2 s after its end), with the
# sockets' queues (ss) and the server's goroutines (SIGQUIT dump) saved.
#
#   bench/stall.sh                   # 40 runs of 3 s
#   RUNS=100 SECS=3 bench/stall.sh
#   BASE=<git revision> bench/stall.sh   # the server built from that revision
#
# This is how the stall fixed in 8a7cb8c was found and checked (6 stalls in
# 155 runs before, none in 100 after). Knobs: RUNS (40), SECS (3, at most
# 60), CONNS (50), CPUS (0,1), NETLOOP_BATCH (passed on), OUT (a new
# /tmp/netloop-stall.* directory).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"
RUNS=${RUNS:-40}
SECS=${SECS:-3}
CONNS=${CONNS:-50}
CPUS=${CPUS:-0,1}
((SECS >= 1 && SECS <= 60)) || { echo "SECS must be 1..60" >&2; exit 2; }
((RUNS >= 1 && RUNS <= 10000)) || { echo "RUNS must be 1..10000" >&2; exit 2; }
OUT=${OUT:-$(mktemp -d /tmp/netloop-stall.XXXXXX)}
src=$root
if [[ -n ${BASE:-} ]]; then
	src=$OUT/base
	mkdir -p "$src"
	git archive "$BASE" | tar -x -C "$src"
fi
(cd "$src" && go build -o "$OUT/server" ./bench/server)
go build -o "$OUT/echoload" ./bench/echoload
ulimit -n 20000 2>/dev/null || true

stalls=0 bad=0
for i in $(seq "$RUNS"); do
	GOMAXPROCS=2 taskset -c "$CPUS" "$OUT/server" -impl netloop -mode echo -addr 127.0.0.1:0 -loops 0 \
		>"$OUT/server.out" 2>"$OUT/server.err" &
	spid=$!
	addr=
	for _ in $(seq 50); do
		addr=$(sed -n 's/^listening on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$OUT/server.out")
		[[ -n $addr ]] && break
		sleep 0.1
	done
	[[ -n $addr ]] || { echo "run $i: the server did not start" >&2; cat "$OUT/server.err" >&2; exit 1; }
	taskset -c "$CPUS" "$OUT/echoload" -addr "$addr" -c "$CONNS" -size 512 -d "${SECS}s" \
		>"$OUT/load.out" 2>"$OUT/load.err" &
	lpid=$!
	sleep $((SECS + 2))
	if kill -0 "$lpid" 2>/dev/null; then
		stalls=$((stalls + 1))
		ss -tn "( sport = :${addr##*:} or dport = :${addr##*:} )" >"$OUT/ss.$i"
		kill -QUIT "$spid"
		wait "$spid" 2>/dev/null || true
		cp "$OUT/server.err" "$OUT/goroutines.$i"
		wait "$lpid" || true
		echo "run $i: STALL ($(cat "$OUT/load.err" | head -1)); $OUT/ss.$i, $OUT/goroutines.$i"
	else
		wait "$lpid" || true
		grep -q "bad_echo=0" "$OUT/load.out" || { bad=$((bad + 1)); echo "run $i: BAD: $(cat "$OUT/load.out" "$OUT/load.err")"; }
		kill -TERM "$spid"
		wait "$spid" 2>/dev/null || true
	fi
done
echo "stall.sh: $RUNS runs of ${SECS}s, $CONNS connections, CPUs $CPUS: $stalls stalled, $bad other bad echoes ($OUT)"
((stalls == 0 && bad == 0))
