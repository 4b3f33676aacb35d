#!/usr/bin/env bash
# A host stall on demand: stops the server and the client together (SIGSTOP to both, as a
# paused VM or an overloaded host stops every process) several times during an idle session,
# and checks what docs/THRESHOLD.md ("Local pauses") claims:
#
#   1. the session survives at the default liveness settings of the interval;
#   2. each end recorded the stalls as its own pauses (`# pause` lines), so replaying its
#      trace at those settings finds no mistake;
#   3. with the pause lines removed, the same replay finds mistakes (the check would be
#      worthless if the stalls were too short to matter). Not always one per stall: without
#      the pauses, each stall also enters the detector's window and widens it.
#
# Usage: scripts/host-stall.sh [INTERVAL_MS] [STALLS] [STALL_MS]   (defaults: 1 20 150)
# Exit status 0 when all three hold. Loopback only; nothing needs root.
set -euo pipefail

cd "$(dirname "$0")/.."
H=${1:-1}
STALLS=${2:-20}
STALL_MS=${3:-150}
# REALMQ_SERVER / REALMQ_CLIENT: binaries to use instead of building them.
if [ -z "${REALMQ_SERVER:-}" ] || [ -z "${REALMQ_CLIENT:-}" ]; then
    cargo build --release -q -p realmq-server -p realmq-client
fi
SERVER=${REALMQ_SERVER:-$PWD/target/release/realmq-server}
CLIENT=${REALMQ_CLIENT:-$PWD/target/release/realmq-client}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# The run lasts the stalls plus 2 s between them and on both sides.
DURATION=$(( (STALLS * (2000 + STALL_MS)) / 1000 + 4 ))
"$SERVER" --bind 127.0.0.1:0 --port-file "$WORK/port" --exit-after-sessions 1 \
    --heartbeat-interval "${H}ms" --record-arrivals "$WORK/server" >"$WORK/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
[ -s "$WORK/port" ] || { echo "the server did not start: $(cat "$WORK/server.log")" >&2; exit 1; }
"$CLIENT" --server "$(cat "$WORK/port")" --idle --duration "$DURATION" --interval 0 \
    --record-arrivals "$WORK/client" >"$WORK/client.log" 2>&1 &
PIDS+=($!)
echo "idle session at ${H} ms heartbeats for ${DURATION} s; ${STALLS} stalls of ${STALL_MS} ms"
sleep 2
for _ in $(seq "$STALLS"); do
    kill -STOP "${PIDS[@]}"
    sleep "$(awk -v ms="$STALL_MS" 'BEGIN {printf "%.3f", ms / 1000}')"
    kill -CONT "${PIDS[@]}"
    sleep 2
done

failed=0
wait "${PIDS[1]}" || { echo "the client failed:" >&2; tail -3 "$WORK/client.log" >&2; failed=1; }
wait "${PIDS[0]}" || { echo "the server failed:" >&2; tail -3 "$WORK/server.log" >&2; failed=1; }
PIDS=()

# The default threshold of the interval: the recommended table of docs/THRESHOLD.md (a test
# keeps it equal to the binaries' table); an interval between rows takes the lower row's.
PHI=$(awk -v h="$H" -F'|' '/^## Recommended settings/ {on = 1; next}
    on && /^\|/ {table = 1; if ($2 + 0 > 0 && first == "") first = $3 + 0
                  if ($2 + 0 > 0 && $2 + 0 <= h) phi = $3 + 0; next}
    table {exit} END {print (phi == "" ? first : phi)}' docs/THRESHOLD.md)

# mistakes TRACE: the mistakes of a replay at the interval's default settings.
mistakes() {
    "$CLIENT" phi-sweep --trace "$1" --heartbeat-interval "${H}ms" --thresholds "$PHI" --json \
        2>/dev/null | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["mistakes"])'
}
echo "replays at the default threshold for ${H} ms, φ = $PHI"
for end in server client; do
    trace=$(ls "$WORK/$end".* | grep -v '\.log$' | head -1)
    grep -v '^# pause' "$trace" >"$trace.without"
    pauses=$(grep -c '^# pause' "$trace" || true)
    with=$(mistakes "$trace")
    without=$(mistakes "$trace.without")
    echo "$end: $pauses pauses recorded; mistakes at the default settings: $with, and $without without the pauses"
    if [ "$with" != 0 ] || [ "$without" = 0 ]; then failed=1; fi
done
[ "$failed" = 0 ] && echo "ok: the session survived and every stall was the ends' own pause"
exit "$failed"
