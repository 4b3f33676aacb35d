#!/usr/bin/env bash
# Records the heartbeat traces of docs/THRESHOLD.md: for each heartbeat interval, one idle
# session (heartbeats only) recorded on both ends with --record-arrivals, in four conditions:
#
#   loopback  client and server on 127.0.0.1
#   loss1     client and server in two network namespaces joined by a veth pair, with
#             nftables dropping 1 % of the UDP datagrams entering each namespace
#   loss5     the same with 5 %
#   busy      loopback, with one CPU hog per core running beside the processes
#
# The detector must not end a session while it is being recorded (at 1 ms a startup hiccup
# evicted it with the settings of the time), so both ends get a grace period of a day: the
# arrivals recorded do not depend on the detector, only whether the session survives does.
#
# Every session of a condition runs in parallel (idle sessions are cheap); loopback, loss1
# and loss5 run together, then busy (its hogs would disturb the others).
#
# Output: OUT/<condition>-<interval>ms-<end>.txt.gz, one arrival per line in microseconds
# (and `# pause` lines for the recording process's own pauses), where <end> is `server` (the
# client's heartbeats as the server saw them) or `client` (the server's answers as the client
# saw them). scripts/threshold-tables.py adds up every recording below docs/traces.
#
# Usage: sudo scripts/record-traces.sh [OUT] [SECONDS] [INTERVALS...]
#   defaults: docs/traces/recording-<UTC date and time> 130 1 5 10 50 100 1000
# Needs root (ip netns, nft). Cleans up its namespaces and hogs on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=${1:-docs/traces/recording-$(date -u +%Y%m%dT%H%M)}
SECONDS_PER_TRACE=${2:-130}
shift 2 2>/dev/null || shift $#
INTERVALS=("$@")
[ ${#INTERVALS[@]} -gt 0 ] || INTERVALS=(1 5 10 50 100 1000)

command -v nft >/dev/null || { echo "nft missing: apt-get install -y nftables" >&2; exit 2; }
# REALMQ_SERVER / REALMQ_CLIENT: binaries to use instead of building them.
if [ -z "${REALMQ_SERVER:-}" ] || [ -z "${REALMQ_CLIENT:-}" ]; then
    cargo build --release -q -p realmq-server -p realmq-client
fi
SERVER=${REALMQ_SERVER:-$PWD/target/release/realmq-server}
CLIENT=${REALMQ_CLIENT:-$PWD/target/release/realmq-client}
mkdir -p "$OUT"
WORK=$(mktemp -d)
NS_PREFIX="rmqtr$$"
HOGS=()

cleanup() {
    for pid in "${HOGS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for ns in "${NS_PREFIX}a1" "${NS_PREFIX}b1" "${NS_PREFIX}a5" "${NS_PREFIX}b5"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# make_pair LOSS_PERCENT SUBNET: namespaces <prefix>a<loss> (server, .1) and
# <prefix>b<loss> (client, .2), each dropping LOSS % of incoming UDP.
make_pair() {
    local loss=$1 net=$2 a="${NS_PREFIX}a$1" b="${NS_PREFIX}b$1"
    ip netns add "$a"
    ip netns add "$b"
    ip link add "va$loss$$" netns "$a" type veth peer name "vb$loss$$" netns "$b"
    ip -n "$a" addr add "$net.1/24" dev "va$loss$$"
    ip -n "$b" addr add "$net.2/24" dev "vb$loss$$"
    for ns in "$a" "$b"; do
        ip -n "$ns" link set lo up
        ip -n "$ns" link set "$( [ "$ns" = "$a" ] && echo "va$loss$$" || echo "vb$loss$$")" up
        ip netns exec "$ns" nft -f - <<EOF
table inet rmqloss {
    chain input {
        type filter hook input priority 0; policy accept;
        meta l4proto udp numgen random mod 1000 < $((loss * 10)) drop
    }
}
EOF
    done
}

# session CONDITION INTERVAL_MS SERVER_PREFIX CLIENT_PREFIX BIND: records one idle session.
session() {
    local cond=$1 h=$2 sp=$3 cp=$4 bind=$5
    local tag="$cond-${h}ms" port="$WORK/$cond-$h.port"
    $sp "$SERVER" --bind "$bind" --port-file "$port" --exit-after-sessions 1 \
        --heartbeat-interval "${h}ms" --grace-period 86400s --record-arrivals "$WORK/$tag-server" \
        >"$WORK/$tag-server.log" 2>&1 &
    local server=$!
    for _ in $(seq 100); do [ -s "$port" ] && break; sleep 0.1; done
    $cp "$CLIENT" --server "$(cat "$port")" --idle --duration "$SECONDS_PER_TRACE" \
        --connect-timeout 10 --interval 0 --grace-period 86400s --record-arrivals "$WORK/$tag-client" \
        >"$WORK/$tag-client.log" 2>&1 || echo "$tag: client failed (see its log)" >&2
    wait "$server" || echo "$tag: server failed" >&2
    for end in server client; do
        local f
        f=$(ls "$WORK/$tag-$end".* 2>/dev/null | grep -v '\.log$' | head -1)
        if [ -n "$f" ]; then
            gzip -9 -c "$f" >"$OUT/$tag-$end.txt.gz"
        else
            echo "$tag: no $end trace" >&2
        fi
    done
}

make_pair 1 10.197.1
make_pair 5 10.197.5

echo "recording ${SECONDS_PER_TRACE}s traces: loopback, loss1, loss5 (intervals ${INTERVALS[*]} ms)"
pids=()
for h in "${INTERVALS[@]}"; do
    session loopback "$h" "" "" 127.0.0.1:0 & pids+=($!)
    session loss1 "$h" "ip netns exec ${NS_PREFIX}a1" "ip netns exec ${NS_PREFIX}b1" 10.197.1.1:0 & pids+=($!)
    session loss5 "$h" "ip netns exec ${NS_PREFIX}a5" "ip netns exec ${NS_PREFIX}b5" 10.197.5.1:0 & pids+=($!)
done
wait "${pids[@]}"

echo "recording busy (one CPU hog per core)"
for _ in $(seq "$(nproc)"); do
    sh -c 'while :; do :; done' & HOGS+=($!)
done
pids=()
for h in "${INTERVALS[@]}"; do
    session busy "$h" "" "" 127.0.0.1:0 & pids+=($!)
done
wait "${pids[@]}"
for pid in "${HOGS[@]}"; do kill "$pid" 2>/dev/null || true; done
HOGS=()
ls -l "$OUT"
