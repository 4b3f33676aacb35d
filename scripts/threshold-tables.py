#!/usr/bin/env python3
"""The analysis of docs/THRESHOLD.md, from the traces of scripts/record-traces.sh.

For each heartbeat interval h and each candidate minimum standard deviation, replays every
trace of h (4 conditions x 2 ends) with `realmq-client phi-sweep --json` and picks the
recommendation: among the settings where the threshold one step above the smallest
mistake-free one is still mistake-free on every trace, the one with the shortest detection
time (the step is the safety margin). Then prints one markdown table per condition at the
recommended minimum standard deviation, and draws docs/threshold.svg.

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


def unpacked(path):
    out = os.path.join(tmp, os.path.basename(path)[:-3])
    if not os.path.exists(out):
        with gzip.open(path, "rb") as f, open(out, "wb") as g:
            g.write(f.read())
    return out


def traces(h, conditions=CONDITIONS):
    files = []
    for c in conditions:
        files += sorted(glob.glob(f"{TRACES}/{c}-{h}ms-*.txt.gz"))
    return [unpacked(f) for f in files]


def sweep(files, h, std_ms, extra=()):
    cmd = [CLIENT, "phi-sweep", "--json", "--heartbeat-interval", f"{h}ms",
           "--min-std-deviation", f"{std_ms * 1000:.0f}us",
           "--thresholds", ",".join(str(t) for t in THRESHOLDS), *extra]
    for f in files:
        cmd += ["--trace", f]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def recommend(h):
    best = None
    for std in sorted({round(f * h, 3) for f in FRACTIONS} | set(FLOORS_MS)):
        rows = sweep(traces(h), h, std)
        free = [i for i, r in enumerate(rows) if r["mistakes"] == 0]
        # Mistake-free from some threshold on (mistakes only fall as φ grows).
        if not free or free[-1] != len(rows) - 1:
            continue
        first = free[0]
        pick = rows[min(first + 1, len(rows) - 1)]
        if best is None or pick["detection_ms"] < best[2]["detection_ms"]:
            best = (std, first, pick)
    return best


def cell(r):
    return f"{r['mistakes_per_min']:.2f} / {r['detection_ms']:.1f}"


def main():
    recs = {}
    for h in INTERVALS:
        if not traces(h):
            continue
        std, _, pick = recommend(h)
        recs[h] = (std, pick)
        bound = 10 * h + 50
        print(f"h={h} ms: min std {std} ms, phi {pick['threshold']}, "
              f"detection {pick['detection_ms']:.1f} ms (bound {bound} ms)", file=sys.stderr)
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
