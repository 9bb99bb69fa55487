#!/usr/bin/env python3
"""Turns the JSON lines written by run.sh into a Markdown table.

Input (argv[1]): one line per client run, `PAIR<TAB>JSON`, where PAIR is one of
node-node, rust-node, node-rust, rust-rust (server-client). Each metric is the median over the
runs of a pair. Exits 1 if any run reported errors or wrong results, or produced no JSON.
"""

import json
import statistics
import sys

PAIRS = [
    ("node-node", "Node srv / Node client"),
    ("rust-node", "Rust srv / Node client"),
    ("node-rust", "Node srv / Rust client"),
    ("rust-rust", "Rust srv / Rust client"),
]

# (key, label, unit, higher_is_better)
METRICS = [
    ("seq_p50_us", "sequential `square` p50", "µs", False),
    ("seq_p99_us", "sequential `square` p99", "µs", False),
    ("chain3_pipelined_us", "3-call chain, pipelined", "µs", False),
    ("chain3_awaited_us", "3-call chain, awaited one by one", "µs", False),
    ("concurrent_ms", "1000 concurrent `square`", "ms", False),
    ("throughput_cps", "calls/s @ 64 in flight", "calls/s", True),
]


def fmt(x, unit):
    if x is None:
        return "n/a"
    if unit == "calls/s":
        return f"{x:,.0f}"
    if unit == "ms":
        return f"{x:.2f}"
    return f"{x:.1f}" if x < 1000 else f"{x:,.0f}"


def ratio(rust, node, higher_is_better):
    if rust is None or node is None or rust == 0 or node == 0:
        return "n/a"
    r = rust / node if higher_is_better else node / rust
    return f"{r:.2f}×"


def main():
    runs = {p: [] for p, _ in PAIRS}
    failed_runs = {p: 0 for p, _ in PAIRS}
    with open(sys.argv[1], encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            pair, _, payload = line.partition("\t")
            try:
                runs[pair].append(json.loads(payload))
            except (json.JSONDecodeError, KeyError):
                failed_runs[pair] = failed_runs.get(pair, 0) + 1

    def median(pair, key):
        vals = [r[key] for r in runs[pair] if isinstance(r.get(key), (int, float))]
        return statistics.median(vals) if vals else None

    header = ["metric"] + [label for _, label in PAIRS]
    header += ["Rust srv / Node srv (Node client)", "Rust srv / Node srv (Rust client)"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|")
    for key, label, unit, higher in METRICS:
        med = {p: median(p, key) for p, _ in PAIRS}
        row = [f"{label} ({unit})"] + [fmt(med[p], unit) for p, _ in PAIRS]
        row.append(ratio(med["rust-node"], med["node-node"], higher))
        row.append(ratio(med["rust-rust"], med["node-rust"], higher))
        print("| " + " | ".join(row) + " |")

    bad = False
    cells = []
    for p, _ in PAIRS:
        errs = sum(r.get("errors", 0) + r.get("wrong", 0) for r in runs[p])
        bad |= errs > 0 or failed_runs[p] > 0
        cell = f"{errs} / {len(runs[p])} runs"
        if failed_runs[p]:
            cell += f" ({failed_runs[p]} runs crashed)"
        cells.append(cell)
    print("| errors + wrong results (all runs) | " + " | ".join(cells) + " | | |")
    print()
    print(
        "Ratios are Rust server vs Node server with the same client: node/rust for times,"
        " rust/node for calls/s, so > 1 means the Rust server is faster."
    )
    for p, _ in PAIRS:
        for r in runs[p]:
            for s in r.get("error_samples", []):
                print(f"- {p}: {s}", file=sys.stderr)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
