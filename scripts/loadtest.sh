#!/usr/bin/env bash
# Load test: RealMQ over UDP with and without QoS against the TCP baseline, on loopback.
#
# Usage: scripts/loadtest.sh [--quick] [--messages N | --duration SECS] [--rate N] [--psk]
#                            [--only REGEX] [--out DIR] [--socket-buffer BYTES]
#                            [--busy-poll DURATION] [--datagram-size BYTES]
#
#   --quick       200000 messages per scenario (default: 1000000; with --compare 10000000)
#   --messages N  N messages per scenario
#   --duration S  send for S seconds per scenario instead of a number of messages
#   --rate N      messages per second per scenario (default: as fast as possible)
#   --out DIR     keep every scenario's JSON summaries and logs in DIR (created if missing)
#   --socket-buffer BYTES  SO_RCVBUF/SO_SNDBUF asked on both ends (default: the binaries' 4M)
#   --busy-poll D every server (RealMQ, raw UDP and TCP alike) keeps polling for D (e.g.
#                 100us) after its last arrival before sleeping (realmq-server --busy-poll)
#   --datagram-size BYTES  UDP datagrams of up to BYTES (realmq-client --datagram-size, for
#                 RealMQ and raw UDP alike; e.g. 8972 for jumbo frames; default 1472)
#   --psk         add scenarios with authenticated sessions (udp-psk-*: a fresh random
#                 --psk-file on both ends)
#   --only REGEX  run only the scenarios whose name matches (e.g. 'udp-(qos|psk)-t1')
#   --compare     raw UDP (the same batching and system calls, no protocol), RealMQ with and
#                 without QoS and TCP, repeated 3 times alternating (A B C D A B C D ...),
#                 then one table of medians with the ratios RealMQ/raw and RealMQ/TCP, and one
#                 of each mode's CPU a message (client process + server thread, ns). Ten
#                 million messages per run unless --messages, --quick or --duration says
#                 otherwise: a million is 40-50 ms of sending at full speed, mostly start-up,
#                 and its medians moved by a third from one invocation to the next
#   --repeat N    with --compare: N rounds instead of 3
#   --no-pin      with --compare: let the scheduler place the processes. By default each
#                 server runs on the last CPU this script may use and each client on the
#                 others (taskset, as iperf3 -A does): unpinned, the rounds of one run
#                 varied far more (docs/BENCHMARKS.md, the section of 2026-12-03 22:19)
#   --pin         pin without --compare too
#
# Builds the release binaries, then for every scenario (protocol x QoS x threads x size)
# starts a server on a free 127.0.0.1 port with --exit-after-sessions <threads> --json,
# runs the client with --json, and finally prints one comparison table. Latency columns are
# the server's one-way latency; msgs/s and MB/s are the client's (first send to last ack).
# Needs bash, cargo and python3 (to read the JSON summaries). Exits non-zero if a
# scenario that should not lose messages (UDP with QoS, TCP) lost one, or a process failed.
set -euo pipefail

messages=""
psk=0
compare=0
repeats=1
only=""
out=""
rate=0
duration=""
buffer=()
busy_poll=()
datagram=()
pin=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) messages=200000 ;;
        --psk) psk=1 ;;
        --compare)
            compare=1
            [[ $repeats -gt 1 ]] || repeats=3
            ;;
        --pin) pin=1 ;;
        --no-pin) pin=0 ;;
        --repeat)
            [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || { echo "error: --repeat needs a positive whole number" >&2; exit 2; }
            repeats="$2"
            shift
            ;;
        --out)
            [[ $# -ge 2 ]] || { echo "error: --out needs a directory" >&2; exit 2; }
            out="$2"
            shift
            ;;
        --socket-buffer)
            [[ $# -ge 2 ]] || { echo "error: --socket-buffer needs a size" >&2; exit 2; }
            buffer=(--socket-buffer "$2")
            shift
            ;;
        --busy-poll)
            [[ $# -ge 2 ]] || { echo "error: --busy-poll needs a duration (e.g. 100us)" >&2; exit 2; }
            busy_poll=(--busy-poll "$2")
            shift
            ;;
        --datagram-size)
            [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || { echo "error: --datagram-size needs a whole number of bytes" >&2; exit 2; }
            datagram=(--datagram-size "$2")
            shift
            ;;
        --rate)
            [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || { echo "error: --rate needs a whole number" >&2; exit 2; }
            rate="$2"
            shift
            ;;
        --duration)
            [[ $# -ge 2 && "$2" =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "error: --duration needs seconds" >&2; exit 2; }
            duration="$2"
            shift
            ;;
        --only)
            [[ $# -ge 2 ]] || { echo "error: --only needs a pattern" >&2; exit 2; }
            only="$2"
            shift
            ;;
        --messages)
            [[ $# -ge 2 ]] || { echo "error: --messages needs a number" >&2; exit 2; }
            messages="$2"
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
    messages=1000000
    [[ $compare -eq 1 ]] && messages=10000000
fi
[[ "$messages" =~ ^[1-9][0-9]*$ ]] || { echo "error: --messages wants a positive integer" >&2; exit 2; }
command -v python3 >/dev/null || { echo "error: python3 is needed to read the JSON summaries" >&2; exit 2; }
[[ -n "$pin" ]] || pin=$compare
# Pinning: the server on the last CPU this script may use, clients on the others.
server_cpus="" client_cpus=""
if [[ $pin -eq 1 ]]; then
    read -r server_cpus client_cpus < <(python3 -c 'import os; c = sorted(os.sched_getaffinity(0)); print(c[-1], ",".join(map(str, c[:-1])))')
    if [[ -z "$client_cpus" ]] || ! command -v taskset >/dev/null; then
        echo "note: not pinning (needs taskset and at least two CPUs)" >&2
        server_cpus="" client_cpus=""
    fi
fi
server_pin=() client_pin=()
if [[ -n "$server_cpus" ]]; then
    server_pin=(taskset -c "$server_cpus")
    client_pin=(taskset -c "$client_cpus")
    echo "pinning: clients on CPU $client_cpus, servers on CPU $server_cpus (--no-pin to let them float)" >&2
fi
command -v cargo >/dev/null || { echo "error: cargo is needed to build the binaries" >&2; exit 2; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
echo "building release binaries (the first build takes a minute or two)..." >&2
cargo build --release -p realmq-server -p realmq-client
bin="${CARGO_TARGET_DIR:-$root/target}/release"

work="$(mktemp -d "${TMPDIR:-/tmp}/realmq-loadtest.XXXXXX")"
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "interrupted: stopping" >&2; exit 130' INT TERM

# wait_or_kill PID TENTHS
# shellcheck source=lib/processes.sh
source "$root/scripts/lib/processes.sh"

# name protocol qos(qos|noqos) threads size
run_scenario() {
    local name="$1" protocol="$2" qos="$3" threads="$4" size="$5"
    local dir="$work/$name" addr="" spid cpid rc=0 i
    mkdir -p "$dir"
    local key=()
    [[ "$qos" == psk ]] && key=(--psk-file "$work/psk")
    "${server_pin[@]}" "$bin/realmq-server" --bind 127.0.0.1:0 --port-file "$dir/port" --protocol "$protocol" \
        --exit-after-sessions "$threads" --json "${key[@]}" "${buffer[@]}" "${busy_poll[@]}" \
        >"$dir/server.json" 2>"$dir/server.log" &
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
        echo "$name server-failed" >>"$work/failures"
        return
    fi
    addr="$(cat "$dir/port")"
    local args=(--server "$addr" --protocol "$protocol" --threads "$threads"
        --size "$size" --rate "$rate" --interval 0 --json)
    if [[ "$qos" == ping ]]; then
        # One message in flight: a round trip each; 20,000 give a stable p99.9.
        args+=(--messages "$((messages < 20000 ? messages : 20000))")
    elif [[ -n "$duration" ]]; then
        args+=(--duration "$duration")
    else
        args+=(--messages "$messages")
    fi
    [[ "$qos" == noqos ]] && args+=(--no-qos)
    [[ "$qos" == ping ]] && args+=(--ping)
    args+=("${key[@]}" "${buffer[@]}")
    [[ "$protocol" != tcp ]] && args+=("${datagram[@]}")
    # In the background with `wait`, so that a signal to this script runs its trap at once
    # (bash defers traps until a foreground child ends).
    "${client_pin[@]}" "$bin/realmq-client" "${args[@]}" >"$dir/client.json" 2>"$dir/client.log" &
    cpid=$!
    pids+=("$cpid")
    wait "$cpid" || rc=$?
    finish_scenario "$name" "$dir" "$rc" "$spid"
    python3 - "$dir" "$name" <<'EOF' >&2
import json, sys
d, name = sys.argv[1], sys.argv[2]
try:
    c = json.load(open(f"{d}/client.json"))
    s = json.load(open(f"{d}/server.json"))
    rate = c.get('delivered_per_s')
    rate = f"{rate:,.0f}" if rate is not None else "unknown"
    print(f"  {name}: {rate} msgs/s delivered, sent {c['sent']}, delivered {s['received']}")
except (OSError, ValueError, KeyError) as e:
    print(f"  {name}: no summary ({e})")
EOF
}

touch "$work/scenarios" "$work/failures"
python3 -c 'import os; print(os.urandom(32).hex())' >"$work/psk"
modes=(udp:qos udp:noqos tcp:qos)
[[ $psk -eq 1 ]] && modes=(udp:qos udp:psk udp:noqos tcp:qos)
[[ $compare -eq 1 ]] && modes=(raw:raw udp:qos udp:noqos tcp:qos)
scenarios=()
for protocol_qos in "${modes[@]}"; do
    for threads in 1 2; do
        for size in 64 1024; do
            scenarios+=("$protocol_qos:$threads:$size")
        done
    done
done
# Latency mode (--ping): one message in flight, round trips measured by the client.
[[ $compare -eq 1 ]] || scenarios+=("udp:ping:1:64" "tcp:ping:1:64")
n=0
for ((round = 1; round <= repeats; round++)); do
    for s in "${scenarios[@]}"; do
        IFS=: read -r protocol qos threads size <<<"$s"
        n=$((n + 1))
        label="$protocol"
        [[ "$protocol" == udp || "$qos" == ping ]] && label="$protocol-$qos"
        name="${label}-t${threads}-${size}B"
        if [[ -n "$only" && ! "$name" =~ $only ]]; then
            continue
        fi
        [[ $repeats -gt 1 ]] && name="$name-r$round"
        echo "[$n/$((${#scenarios[@]} * repeats))] $name, ${duration:+$duration s}${duration:-$messages messages}" >&2
        run_scenario "$name" "$protocol" "$qos" "$threads" "$size"
    done
done

header_messages=$messages
[[ -n "$duration" ]] && header_messages=0
python3 - "$work" "$header_messages" "$compare" "$server_cpus" "$client_cpus" <<'EOF'
import json, sys
work, messages = sys.argv[1], int(sys.argv[2])
server_cpus, client_cpus = sys.argv[4], sys.argv[5]
failures = [l.split() for l in open(f"{work}/failures") if l.strip()]
failed = {f[0]: f[1] for f in failures}
rows, bad = [], []
na = "n/a"
def num(v, fmt="{:,.0f}"):
    return na if v is None else fmt.format(v)
pings = []
cpu = {}  # scenario -> (client, server) CPU ns a message
for name in (l.strip() for l in open(f"{work}/scenarios") if l.strip()):
    reliable = not name.startswith(("udp-noqos", "raw"))
    if "-ping-" in name:
        pings.append(name)
        continue
    try:
        c = json.load(open(f"{work}/{name}/client.json"))
        s = json.load(open(f"{work}/{name}/server.json"))
    except (OSError, ValueError):
        rows.append([name] + ["-"] * 10)
        bad.append(f"{name}: {failed.get(name, 'no JSON summary')}")
        continue
    delivered = s["received"]
    lost = c["sent"] - delivered
    cpu[name] = ((c.get("cpu") or {}).get("ns_per_message"), (s.get("cpu") or {}).get("ns_per_message"))
    rows.append([
        name,
        num(c["sent_per_s"]),
        num(c["delivered_per_s"]),
        num(c["mb_per_s"], "{:.1f}"),
        f"{s['latency_us']['p50']:,}",
        f"{s['latency_us']['p99']:,}",
        f"{c['sent']:,}",
        f"{delivered:,}",
        f"{100.0 * lost / c['sent']:.2f}" if c["sent"] else na,
        num(c["retransmitted"], "{:,}"),
        f"{s.get('corrupt', 0):,}",
    ])
    if name in failed:
        bad.append(f"{name}: {failed[name]}")
    elif reliable and (lost != 0 or (c["undeliverable"] or 0) != 0):
        bad.append(f"{name}: lost {lost}, undeliverable {c['undeliverable']}")
    if s.get("corrupt", 0) != 0:
        bad.append(f"{name}: {s['corrupt']} corrupt messages")
head = ["scenario", "sent/s", "delivered/s", "MB/s", "p50 µs", "p99 µs", "sent", "delivered",
        "loss %", "resent", "corrupt"]
if not rows:
    print("no scenario matched --only", file=sys.stderr)
    sys.exit(2)
def table(head, rows):
    """Prints `rows` under `head`, the first column left-aligned and the others right."""
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    line = lambda r: "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths)))
    print(line(head))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))
print(f"{'' if messages == 0 else f'{messages:,} messages per scenario; '}sent/s: client, first to last send; delivered/s and "
      "MB/s: messages the server confirmed, first send to last confirmation; latency: one-way "
      "at the server; resent: n/a for TCP (the kernel resends unseen)")
table(head, rows)
if len(sys.argv) > 3 and sys.argv[3] == "1":
    import re, statistics
    modes = ("raw", "udp-qos", "udp-noqos", "tcp")
    # A comparison run's scenario: mode, case (threads and size) and round.
    compared = lambda name: re.match(r"^(raw|udp-qos|udp-noqos|tcp)-(t\d+-\d+B)(-r(\d+))?$", name)
    # Cases by thread count, then name.
    cases = lambda keys: sorted({k[0] for k in keys}, key=lambda c: (int(c.split("-")[1][:-1]), c))
    groups, by_round = {}, {}
    for r in rows:
        m = compared(r[0])
        if m and r[2] not in ("-", na):
            rate = float(r[2].replace(",", ""))
            groups.setdefault((m.group(2), m.group(1)), []).append(rate)
            by_round[(m.group(2), m.group(1), m.group(4))] = rate
    print()
    print("medians of delivered/s over the rounds; ratios of the medians; "
          + (f"clients on CPU {client_cpus}, servers on CPU {server_cpus} (taskset; --no-pin lets them float)"
             if server_cpus else "processes not pinned"))
    out = []
    for case in cases(groups):
        med = {mode: statistics.median(groups[(case, mode)]) for mode in modes if (case, mode) in groups}
        ratio = lambda a, b: f"{med[a] / med[b]:.2f}" if a in med and b in med and med[b] else na
        # Each round's QoS against the raw run right before it: how far the noise moves it.
        rounds = sorted({k[2] for k in by_round if k[0] == case})
        pairs = [by_round[(case, "udp-qos", n)] / by_round[(case, "raw", n)] for n in rounds
                 if (case, "udp-qos", n) in by_round and by_round.get((case, "raw", n))]
        spread = f"{min(pairs):.2f}-{max(pairs):.2f}" if len(pairs) > 1 else na
        out.append([case] + [f"{med[m]:,.0f}" if m in med else na for m in modes]
                   + [ratio("udp-qos", "raw"), ratio("udp-qos", "tcp"), str(len(groups.get((case, "udp-qos"), []))),
                      spread])
    table(["scenario", "raw UDP", "RealMQ QoS", "no QoS", "TCP", "QoS/raw", "QoS/TCP", "rounds",
           "QoS/raw by round"], out)
    # Each end's processor time (client process, server thread) over the messages it handled,
    # as iperf3 reports its CPU use: who works how hard.
    ns = {}
    for name, (c_ns, s_ns) in cpu.items():
        m = compared(name)
        if m and c_ns is not None and s_ns is not None:
            ns.setdefault((m.group(2), m.group(1)), []).append((c_ns, s_ns))
    if ns:
        print()
        print("CPU a message, ns, client + server (medians over the rounds; client: its process, "
              "server: its serving thread). A client at full speed never sleeps, so its figure is "
              "about 1 / its rate; the server's shows the headroom it had")
        out = []
        for case in cases(ns):
            med = {mode: (statistics.median(c for c, _ in ns[(case, mode)]),
                          statistics.median(s for _, s in ns[(case, mode)]))
                   for mode in modes if (case, mode) in ns}
            cell = lambda m: f"{med[m][0]:.1f} + {med[m][1]:.1f}" if m in med else na
            out.append([case] + [cell(m) for m in modes])
        table(["scenario", "raw UDP", "RealMQ QoS", "no QoS", "TCP"], out)
ping_rows = []
for name in pings:
    try:
        c = json.load(open(f"{work}/{name}/client.json"))
        r = c["rtt_us"] or {}
        ping_rows.append([name, f"{c['sent']:,}", *(f"{r.get(k, 0):,}" for k in ("p50", "p99", "p999", "max"))])
        if c.get("error"):
            bad.append(f"{name}: {c['error']}")
    except (OSError, ValueError, KeyError):
        bad.append(f"{name}: {failed.get(name, 'no JSON summary')}")
if ping_rows:
    print()
    print("round trips, one message in flight, 64 bytes (UDP: send to acknowledgement; TCP: send to the server's answer)")
    table(["latency mode (--ping)", "messages", "RTT p50 µs", "p99 µs", "p99.9 µs", "max µs"], ping_rows)
if bad:
    print("FAILED:", "; ".join(bad), file=sys.stderr)
    sys.exit(1)
EOF
