#!/usr/bin/env bash
# Loss test: RealMQ (UDP with QoS) and TCP under real kernel packet loss, side by side.
#
# Usage: scripts/netns-loadtest.sh [--quick | --loss LIST] [--messages N] [--rate N] [--timeout SECS]
#                                  [--only REGEX] [--out DIR] [--no-build]
#
#   --quick        a few scenarios for CI (0 % and 5 % both ways, 5 % on the client's output
#                  hook, the narrow path without loss; RealMQ and TCP; paced only), 20000
#                  messages each: well under a minute
#   --messages N   messages per scenario (default: 200000; --quick: 20000)
#   --rate N       messages per second of the paced scenarios (default: 50000)
#   --timeout S    give up on a client after S seconds (default: 120); the scenario then
#                  counts as failed and the table goes on
#   --only REGEX   run only the scenarios whose name matches (e.g. 'udp-paced-(0|5)-')
#   --loss LIST    other loss rates instead of the default scenarios: for each P % in the
#                  comma-separated LIST (whole numbers 0-99, e.g. 10,30,50), the data, ack
#                  and both placements, paced and at full speed, RealMQ and TCP
#   --out DIR      keep every scenario's JSON summaries and logs in DIR (created if missing)
#   --no-build     use the release binaries as they are, without `cargo build --release`
#
# Needs root (it creates network namespaces), iproute2, nftables, coreutils' timeout and
# python3 (to read the JSON summaries). It makes two namespaces, rmqnl-s-<PID> (server) and
# rmqnl-c-<PID> (client), joined by a veth pair 10.77.0.1/24 <-> 10.77.0.2/24, and for each
# scenario drops a random share of the UDP and TCP packets with an nftables rule
# (`numgen random mod 100 < P drop`), each datagram or TCP segment on its own (the veth
# carries at most one per packet: `gso_max_size` at the MTU, see below):
#
#   data    on the input hook of the server namespace: messages (and TCP data) are lost
#   ack     on the input hook of the client namespace: acknowledgements are lost
#   both    on both input hooks, P % each way
#   output  on the output hook of the client namespace: the client's send() fails (EPERM)
#   mtu     P % each way as `both`, over a narrow path: the veth's MTU lowered from 1500 to
#           1280 (a tunnel's, an IPv6 minimum), below the 1,500 RealMQ's datagrams assume
#
# Loss rates 0, 1, 5 and 20 % (output: 5 % only; mtu: 0 and 5 %), each for RealMQ and TCP,
# paced (--rate) and at full speed. Scenario names read protocol-mode-loss-placement (udp-paced-5-both).
# Each run is `realmq-server --bind 10.77.0.1:0 --port-file ... --exit-after-sessions 1
# --json` in the server namespace and `realmq-client --json` in the client namespace. Prints
# one table on stdout: delivered and lost as the client reports them (confirmed by the
# server), msgs/s the client's delivered_per_s, latency the server's one-way latency.
# Everything it created (namespaces, veth, processes, temporary files) is removed on exit,
# also on failure or Ctrl-C, and so are namespaces of its name pattern left by a run that
# was killed. Exits 1 if RealMQ lost a message, gave one up, failed or hung in any scenario,
# if a RealMQ scenario's datagrams did not cross the veth one per packet (a counter at the
# server's input hook checks it), or if any payload arrived corrupt; a TCP run that hit --timeout, or whose client gave up
# because the connection made no progress for 30 s, is reported, not fatal.
set -euo pipefail

messages=""
rate=50000
limit=120
quick=0
only=""
out=""
losses=""
build=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) quick=1 ;;
        --no-build) build=0 ;;
        --messages)
            [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || { echo "error: --messages needs a positive whole number" >&2; exit 2; }
            messages="$2"
            shift
            ;;
        --rate)
            [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || { echo "error: --rate needs a positive whole number" >&2; exit 2; }
            rate="$2"
            shift
            ;;
        --timeout)
            [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || { echo "error: --timeout needs whole seconds" >&2; exit 2; }
            limit="$2"
            shift
            ;;
        --only)
            [[ $# -ge 2 ]] || { echo "error: --only needs a pattern" >&2; exit 2; }
            only="$2"
            shift
            ;;
        --loss)
            [[ $# -ge 2 && "$2" =~ ^[0-9]{1,2}(,[0-9]{1,2})*$ ]] || { echo "error: --loss needs comma-separated whole percentages below 100 (e.g. 10,30,50)" >&2; exit 2; }
            losses="$2"
            shift
            ;;
        --out)
            [[ $# -ge 2 ]] || { echo "error: --out needs a directory" >&2; exit 2; }
            out="$2"
            shift
            ;;
        -h | --help)
            sed -n '2,/^set -euo/{/^set -euo/!p;}' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) echo "error: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
if [[ -z "$messages" ]]; then
    messages=200000
    [[ $quick -eq 1 ]] && messages=20000
fi
[[ $(id -u) -eq 0 ]] || { echo "error: network namespaces need root (run with sudo)" >&2; exit 2; }
for tool in ip nft timeout python3; do
    command -v "$tool" >/dev/null || {
        echo "error: $tool is needed (apt-get install -y iproute2 nftables coreutils python3)" >&2
        exit 2
    }
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [[ $build -eq 1 ]]; then
    command -v cargo >/dev/null || { echo "error: cargo is needed to build the binaries (or pass --no-build)" >&2; exit 2; }
    echo "building release binaries (the first build takes a minute or two)..." >&2
    cargo build --release -p realmq-server -p realmq-client
fi
bin="${CARGO_TARGET_DIR:-$root/target}/release"
for b in realmq-server realmq-client; do
    [[ -x "$bin/$b" ]] || { echo "error: $bin/$b is missing (build it, or drop --no-build)" >&2; exit 2; }
done

prefix=rmqnl
ns_s="$prefix-s-$$"
ns_c="$prefix-c-$$"
veth_s="${prefix}s$$"
veth_c="${prefix}c$$"
server_ip=10.77.0.1
client_ip=10.77.0.2

# Namespaces and veth ends of earlier runs of this script that were killed before their
# trap ran (their PID no longer exists). Their processes, if any, end by their own timeout.
remove_leftovers() {
    local name pid
    for name in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$prefix-[sc]-[0-9]+$" || true); do
        pid="${name##*-}"
        if [[ "$pid" != "$$" ]] && ! kill -0 "$pid" 2>/dev/null; then
            echo "removing namespace $name, left by an earlier run" >&2
            ip netns delete "$name" 2>/dev/null || true
        fi
    done
    for name in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^${prefix}[sc][0-9]+$" || true); do
        pid="${name#"$prefix"?}"
        if [[ "$pid" != "$$" ]] && ! kill -0 "$pid" 2>/dev/null; then
            echo "removing interface $name, left by an earlier run" >&2
            ip link delete "$name" 2>/dev/null || true
        fi
    done
}

work=""
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    ip netns delete "$ns_s" 2>/dev/null || true
    ip netns delete "$ns_c" 2>/dev/null || true
    ip link delete "$veth_s" 2>/dev/null || true # only if the move into the namespace failed
    if [[ -n "$work" ]]; then rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'echo "interrupted: cleaning up" >&2; exit 130' INT TERM

remove_leftovers
work="$(mktemp -d "${TMPDIR:-/tmp}/realmq-netns.XXXXXX")"

echo "creating namespaces $ns_s ($server_ip) and $ns_c ($client_ip)" >&2
ip netns add "$ns_s"
ip netns add "$ns_c"
ip link add "$veth_s" type veth peer name "$veth_c"
ip link set "$veth_s" netns "$ns_s"
ip link set "$veth_c" netns "$ns_c"
ip -n "$ns_s" addr add "$server_ip/24" dev "$veth_s"
ip -n "$ns_c" addr add "$client_ip/24" dev "$veth_c"
for ns in "$ns_s" "$ns_c"; do
    ip -n "$ns" link set lo up
done
ip -n "$ns_s" link set "$veth_s" up
ip -n "$ns_c" link set "$veth_c" up
# One datagram (one TCP segment) per packet, as on a wire: by default a veth carries a
# sender's GSO/TSO batch as one packet (up to 64 KB: 44 RealMQ datagrams, or dozens of TCP
# segments), and the input hook's random drop took or spared each batch whole (1,308 packets
# at the server's hook for 47,732 datagrams sent, measured 2026-12-03). `set_loss` caps the
# veth's GSO packets at its MTU (`gso_max_size`), so the kernel splits a batch before the
# veth and every datagram and segment is dropped on its own: an nftables counter at the
# server's input hook saw one packet per datagram (95,464 for 95,464) and TCP packets of
# 1,444 bytes on average. (Capping the segments instead, `gso_max_segs 1`, split batches as
# well but cut TCP to a quarter of its rate on this path: 0.77 against 3.0 M msgs/s at full
# speed without loss, RealMQ 6.3 against 7.8 M; measured 2026-12-03. The output placement
# still refuses a whole send: that hook runs before the split, as a local firewall does.)

# Drops pct % of the UDP and TCP packets on hook (input|output) of namespace ns.
drop_rule() {
    local ns="$1" hook="$2" pct="$3"
    ip netns exec "$ns" nft add table inet rmq
    ip netns exec "$ns" nft add chain inet rmq "$hook" "{ type filter hook $hook priority 0; }"
    ip netns exec "$ns" nft add rule inet rmq "$hook" meta l4proto '{ udp, tcp }' \
        numgen random mod 100 '<' "$pct" drop
}

# Sets the drop rules and the path's MTU of one scenario; placement
# none|data|ack|both|output|mtu.
set_loss() {
    local pct="$1" placement="$2" ns mtu=1500
    [[ "$placement" == mtu ]] && mtu=1280
    ip -n "$ns_s" link set "$veth_s" mtu "$mtu" gso_max_size "$mtu"
    ip -n "$ns_c" link set "$veth_c" mtu "$mtu" gso_max_size "$mtu"
    for ns in "$ns_s" "$ns_c"; do
        ip netns exec "$ns" nft flush ruleset
    done
    # The harness checks its own premise: a counter ahead of any drop rule counts the UDP
    # packets reaching the server's input hook, and a RealMQ run whose server received more
    # datagrams than that (GSO batches crossing the veth whole) fails (see the summary).
    ip netns exec "$ns_s" nft add table inet rmqcount
    ip netns exec "$ns_s" nft add chain inet rmqcount input '{ type filter hook input priority -10; }'
    ip netns exec "$ns_s" nft add rule inet rmqcount input meta l4proto udp counter
    case "$placement" in
        none) ;;
        data) drop_rule "$ns_s" input "$pct" ;;
        ack) drop_rule "$ns_c" input "$pct" ;;
        both | mtu) drop_rule "$ns_s" input "$pct"; drop_rule "$ns_c" input "$pct" ;;
        output) drop_rule "$ns_c" output "$pct" ;;
    esac
}

# wait_or_kill PID TENTHS
# shellcheck source=lib/processes.sh
source "$root/scripts/lib/processes.sh"

# name protocol mode(paced|full) pct placement
run_scenario() {
    local name="$1" protocol="$2" mode="$3" pct="$4" placement="$5"
    local dir="$work/$name" addr spid cpid rc=0 i started
    mkdir -p "$dir"
    set_loss "$pct" "$placement"
    # timeout bounds the server too: it normally ends after its session, or when stopped.
    timeout -k 5 $((limit + 60)) ip netns exec "$ns_s" "$bin/realmq-server" \
        --bind "$server_ip:0" --port-file "$dir/port" --protocol "$protocol" \
        --exit-after-sessions 1 --json >"$dir/server.json" 2>"$dir/server.log" &
    spid=$!
    pids+=("$spid")
    for ((i = 0; i < 100; i++)); do
        [[ -s "$dir/port" ]] && break
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.05
    done
    if [[ ! -s "$dir/port" ]]; then
        echo "  server did not start:" >&2
        tail -n 5 "$dir/server.log" >&2
        wait_or_kill "$spid" 1
        echo "$name server-did-not-start" >>"$work/failures"
        echo "$name" >>"$work/scenarios"
        return
    fi
    addr="$(cat "$dir/port")"
    local args=(--server "$addr" --protocol "$protocol" --messages "$messages" --interval 0 --json)
    [[ "$mode" == paced ]] && args+=(--rate "$rate")
    started=$EPOCHREALTIME
    # In the background with `wait`, so that Ctrl-C runs the trap at once (bash defers
    # traps until a foreground child ends). timeout sends SIGTERM, then SIGKILL 5 s later.
    timeout -k 5 "$limit" ip netns exec "$ns_c" "$bin/realmq-client" "${args[@]}" \
        >"$dir/client.json" 2>"$dir/client.log" &
    cpid=$!
    pids+=("$cpid")
    wait "$cpid" || rc=$?
    echo "$started $EPOCHREALTIME" >"$dir/seconds"
    finish_scenario "$name" "$dir" "$rc" "$spid" "$limit"
    ip netns exec "$ns_s" nft list chain inet rmqcount input >"$dir/counter.txt" 2>/dev/null || true
    python3 - "$dir" "$name" <<'EOF' >&2
import json, sys
d, name = sys.argv[1], sys.argv[2]
try:
    c = json.load(open(f"{d}/client.json"))
    s = json.load(open(f"{d}/server.json"))
    rate = c.get("delivered_per_s")
    rate = f"{rate:,.0f}" if rate is not None else "unknown"
    print(f"  {name}: {rate} msgs/s delivered, sent {c.get('sent')}, delivered {c.get('delivered')}, "
          f"one-way p99 {s['latency_us']['p99']} µs")
except (OSError, ValueError, KeyError, TypeError) as e:
    print(f"  {name}: no summary ({e})")
EOF
}

# Scenarios in table order: both protocols next to each other for every loss and placement.
scenarios=()
if [[ -n "$losses" ]]; then
    for mode in paced full; do
        for pct in ${losses//,/ }; do
            for placement in data ack both; do
                for protocol in udp tcp; do
                    scenarios+=("$protocol:$mode:$((10#$pct)):$placement")
                done
            done
        done
    done
elif [[ $quick -eq 1 ]]; then
    for lp in 0:none 5:both 5:output 0:mtu; do
        for protocol in udp tcp; do
            scenarios+=("$protocol:paced:$lp")
        done
    done
else
    for mode in paced full; do
        for lp in 0:none 1:data 1:ack 1:both 5:data 5:ack 5:both 5:output 0:mtu 5:mtu 20:data 20:ack 20:both; do
            for protocol in udp tcp; do
                scenarios+=("$protocol:$mode:$lp")
            done
        done
    done
fi
touch "$work/scenarios" "$work/failures"
n=0
for s in "${scenarios[@]}"; do
    IFS=: read -r protocol mode pct placement <<<"$s"
    n=$((n + 1))
    name="$protocol-$mode-$pct-$placement"
    if [[ -n "$only" && ! "$name" =~ $only ]]; then
        continue
    fi
    pace="full speed"
    [[ "$mode" == paced ]] && pace="$rate msgs/s"
    echo "[$n/${#scenarios[@]}] $name: $messages messages, $pace, $pct % loss ($placement)" >&2
    run_scenario "$name" "$protocol" "$mode" "$pct" "$placement"
done

python3 - "$work" "$messages" "$rate" <<'EOF'
import json, re, sys
work, messages, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
failed = {}
for l in open(f"{work}/failures"):
    if l.strip():
        k, v = l.split(maxsplit=1)
        failed[k] = v.strip()
def load(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return None
def num(v, fmt="{:,}"):
    return "-" if v is None else fmt.format(v)
rows, bad, notes = [], [], []
for name in (l.strip() for l in open(f"{work}/scenarios") if l.strip()):
    protocol, mode, pct, placement = name.split("-")
    c, s = load(f"{work}/{name}/client.json"), load(f"{work}/{name}/server.json")
    try:
        t0, t1 = open(f"{work}/{name}/seconds").read().split()
        seconds = f"{float(t1) - float(t0):.1f}"
    except (OSError, ValueError):
        seconds = "-"
    c = c or {}
    lat = (s or {}).get("latency_us") or {}
    corrupt = (s or {}).get("corrupt")
    delivered = c.get("delivered")
    if delivered is None and s is not None:
        delivered = s.get("received")  # the client gave no count: take the server's
    problems = []
    if name in failed:
        problems.append(failed[name])
    if c.get("error"):
        problems.append(c["error"])
    if c.get("lost"):
        problems.append(f"lost {c['lost']}")
    if c.get("undeliverable"):
        problems.append(f"undeliverable {c['undeliverable']}")
    if c.get("unreachable"):
        problems.append("unreachable")
    if corrupt:
        problems.append(f"{corrupt} corrupt")
    if protocol == "udp" and s is not None:
        # One packet per datagram at the server's input hook, or the loss was not per packet.
        try:
            listing = open(f"{work}/{name}/counter.txt").read()
        except OSError:
            listing = ""
        packets = [int(n) for n in re.findall(r"counter packets (\d+)", listing)]
        received = (s.get("udp") or {}).get("datagrams_received")
        if not packets:
            problems.append("harness: no packet counter read")
        elif received is not None and received > packets[0]:
            problems.append(f"harness: {received:,} datagrams arrived in {packets[0]:,} packets "
                            "(GSO batches crossed the veth whole: the loss was not per packet)")
    if not c:
        problems.append("no client summary")
    if s is None:
        problems.append("no server summary")
    # A TCP client that gave up because its connection made no progress for 30 s met the
    # same backoff as one stopped at --timeout: both are reported, neither is fatal.
    stalled = protocol == "tcp" and "made no progress" in (c.get("error") or "")
    if not problems:
        status = "ok"
    elif name in failed and failed[name].startswith("timeout"):
        status = "timeout"
    else:
        status = "stalled" if stalled else "FAILED"
    rows.append([
        "RealMQ" if protocol == "udp" else "TCP",
        mode,
        pct,
        placement,
        num(delivered),
        num(c.get("lost")),
        num(c.get("delivered_per_s"), "{:,.0f}"),
        num(lat.get("p50")),
        num(lat.get("p99")),
        num(lat.get("p999")),
        num(lat.get("max")),
        num(c.get("retransmitted")),
        seconds,
        status,
    ])
    if problems:
        line = f"{name}: {'; '.join(dict.fromkeys(problems))}"
        # RealMQ must deliver everything; TCP too, but a TCP run that only ran out of time is
        # the kernel's retransmission backoff at work, reported rather than failed.
        if protocol == "udp" or corrupt or c.get("lost") or status == "FAILED":
            bad.append(line)
        else:
            notes.append(line)
if not rows:
    print("no scenario matched --only", file=sys.stderr)
    sys.exit(2)
head = ["protocol", "mode", "loss %", "placement", "delivered", "lost", "msgs/s",
        "p50 µs", "p99 µs", "p99.9 µs", "max µs", "resent", "run s", "status"]
widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
line = lambda r: "  ".join(v.ljust(w) if i in (0, 1, 3) else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths)))
print(f"{messages:,} messages of 64 bytes per scenario, paced at {rate:,} msgs/s or full speed; "
      "loss: nftables random drop per direction (data: server input, ack: client input, "
      "both: each input, output: client output, mtu: both over a path of MTU 1280); delivered/lost/msgs/s: client (confirmed by the "
      "server); latency: one-way at the server; resent: - for TCP (the kernel resends unseen); "
      "run s: client run time")
print(line(head))
print("  ".join("-" * w for w in widths))
for r in rows:
    print(line(r))
for n in notes:
    print("note:", n, file=sys.stderr)
if bad:
    print("FAILED:", "; ".join(bad), file=sys.stderr)
    sys.exit(1)
EOF
