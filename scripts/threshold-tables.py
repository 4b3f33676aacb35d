#!/usr/bin/env python3
"""The analysis of docs/THRESHOLD.md, from the traces of scripts/record-traces.sh.

For each heartbeat interval h and each candidate minimum standard deviation, replays every
trace of h (4 conditions x 2 ends) with `realmq-client phi-sweep --json` and picks the
recommendation: among the settings where the threshold one step above the smallest
mistake-free one is still mistake-free on every trace, and whose detection time is at least
the longest silence of a live peer in h's traces plus the longest scheduling stall seen in
any trace (the margins), the one with the shortest detection time. Then prints one markdown
table per condition at the recommended minimum standard deviation, and draws
docs/threshold.svg.

Silences are counted as the replay counts them: without the recording process's own pauses
(`# pause` lines).

Every trace under TRACES_DIR counts, in any folder below it: several recordings (one folder
each) add up.

Usage: scripts/threshold-tables.py [TRACES_DIR] [CLIENT_BINARY]
"""
import glob
import gzip
import json
import os
import subprocess
import sys
import tempfile

TRACES = sys.argv[1] if len(sys.argv) > 1 else "docs/traces"
CLIENT = sys.argv[2] if len(sys.argv) > 2 else "target/release/realmq-client"
INTERVALS = [1, 5, 10, 50, 100, 1000]
CONDITIONS = ["loopback", "loss1", "loss5", "busy"]
THRESHOLDS = [0.5, 1, 2, 3, 4, 5, 6, 8, 10, 12, 16]
# Candidate minimum standard deviations: fractions of h and absolute floors (ms).
FRACTIONS = [0.1, 0.25, 0.5, 1.0, 2.0]
FLOORS_MS = [0.5, 1, 2, 5, 10, 20, 50]

tmp = tempfile.mkdtemp()


def files_of(condition, h):
    """The traces of a condition and interval, in TRACES or any folder below it (one per
    recording)."""
    return sorted(glob.glob(f"{TRACES}/**/{condition}-{h}ms-*.txt.gz", recursive=True))


def unpacked(path):
    out = os.path.join(tmp, os.path.relpath(path, TRACES).replace(os.sep, "_")[:-3])
    if not os.path.exists(out):
        with gzip.open(path, "rb") as f, open(out, "wb") as g:
            g.write(f.read())
    return out


def traces(h, conditions=CONDITIONS):
    files = []
    for c in conditions:
        files += files_of(c, h)
    return [unpacked(f) for f in files]


def silences(path):
    """The gaps between a trace's arrivals, in ms, less the recorder's pauses in them."""
    arrivals, pauses = [], []
    with gzip.open(path, "rt") as f:
        for line in f:
            if line.startswith("# pause "):
                since, until = line.split()[2:4]
                pauses.append((int(since), int(until)))
            elif line.strip() and not line.startswith("#"):
                arrivals.append(int(line.split()[0]))
    gaps, k = [], 0
    for a, b in zip(arrivals, arrivals[1:]):
        paused = 0
        while k < len(pauses) and pauses[k][1] <= b:
            since, until = pauses[k]
            if until > a:
                paused += until - max(since, a)
            k += 1
        gaps.append((b - a - paused) / 1000)
    return gaps


def longest_silence(h, conditions=CONDITIONS):
    return max(max(silences(f)) for c in conditions for f in files_of(c, h))


# The longest scheduling stall: the longest silence beyond one interval in the traces without
# loss at the intervals where heartbeats come often enough to show it (1-10 ms). A stall can
# hit any session, so every recommendation must survive one on top of its own worst silence.
STALL_MS = max(longest_silence(h, ["loopback", "busy"]) - h for h in INTERVALS if h <= 10
               if files_of("loopback", h))


def sweep(files, h, std_ms, extra=()):
    cmd = [CLIENT, "phi-sweep", "--json", "--heartbeat-interval", f"{h}ms",
           "--min-std-deviation", f"{std_ms * 1000:.0f}us",
           "--thresholds", ",".join(str(t) for t in THRESHOLDS), *extra]
    for f in files:
        cmd += ["--trace", f]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def recommend(h):
    best = None
    floor = longest_silence(h) + STALL_MS
    for std in sorted({round(f * h, 3) for f in FRACTIONS} | set(FLOORS_MS)):
        rows = sweep(traces(h), h, std)
        free = [i for i, r in enumerate(rows) if r["mistakes"] == 0]
        # Mistake-free from some threshold on (mistakes only fall as φ grows).
        if not free or free[-1] != len(rows) - 1:
            continue
        # One threshold step above the smallest mistake-free one, and a detection time that
        # leaves room for a stall on top of the worst silence.
        picks = [r for r in rows[min(free[0] + 1, len(rows) - 1):] if r["detection_ms"] >= floor]
        if picks and (best is None or picks[0]["detection_ms"] < best[2]["detection_ms"]):
            best = (std, free[0], picks[0])
    return best, floor


def cell(r):
    return f"{r['mistakes_per_min']:.2f} / {r['detection_ms']:.1f}"


def main():
    recs = {}
    for h in INTERVALS:
        if not traces(h):
            continue
        best, floor = recommend(h)
        if best is None:
            print(f"h={h} ms: no candidate setting is mistake-free with room for a "
                  f"{floor:.1f} ms silence; no recommendation", file=sys.stderr)
            continue
        std, _, pick = best
        recs[h] = (std, pick)
        bound = 10 * h + 50
        print(f"h={h} ms: min std {std} ms, phi {pick['threshold']}, "
              f"detection {pick['detection_ms']:.1f} ms (at least {floor:.1f}: longest silence "
              f"{longest_silence(h):.1f} + stall {STALL_MS:.1f}; bound {bound} ms)",
              file=sys.stderr)
    print("## Recommended settings\n")
    print("| interval (ms) | threshold φ | min std deviation (ms) | worst detection (ms) | bound 10·h + 50 (ms) |")
    print("|---|---|---|---|---|")
    for h, (std, pick) in recs.items():
        print(f"| {h} | {pick['threshold']} | {std} | {pick['detection_ms']:.1f} | {10 * h + 50} |")
    print()
    for c in CONDITIONS:
        print(f"## {c}\n")
        print("Cells: mistakes per minute / detection time (ms), at each interval's recommended "
              "minimum standard deviation.\n")
        header = "| φ | " + " | ".join(f"{h} ms" for h in recs) + " |"
        print(header)
        print("|---" * (len(recs) + 1) + "|")
        columns = {h: sweep(traces(h, [c]), h, recs[h][0]) for h in recs}
        for i, t in enumerate(THRESHOLDS):
            print(f"| {t} | " + " | ".join(cell(columns[h][i]) for h in recs) + " |")
        print()
    # The figure: every trace of each interval together, at its recommended settings.
    jsons = []
    for h, (std, _) in recs.items():
        path = os.path.join(tmp, f"all-{h}.json")
        with open(path, "w") as f:
            json.dump(sweep(traces(h), h, std), f)
        jsons += ["--plot", path]
    subprocess.run([CLIENT, "phi-sweep", "--svg", "docs/threshold.svg", *jsons], check=True)


main()
