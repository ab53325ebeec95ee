#!/usr/bin/env python3
"""Plot bytes and time of bringing a replica up to date, against state size:
ours (pull: digest + delta) vs a naive full-state exchange vs the crdts crate.

Input: target/bench-data/compare.csv, written by
    cargo run --release -p benches --example crdt-compare
Output: docs/compare.png (needs matplotlib: pip install matplotlib)
Run from the repository root: python3 scripts/plot_compare.py [K]
K is the number of differing keys to plot (default 10).
"""
import csv, sys
from collections import defaultdict

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

k = sys.argv[1] if len(sys.argv) > 1 else "10"
rows = [r for r in csv.DictReader(open("target/bench-data/compare.csv")) if r["k"] == k]
series = defaultdict(list)
for r in rows:
    series[r["impl"]].append((int(r["n"]), float(r["merge_us"]), int(r["bytes"])))
labels = {
    "ours-delta": "ours: pull (digest + delta_since)",
    "ours-full-state": "naive: ship the whole state",
    "crdts": "crdts 7: Map<K, MVReg> full-state merge",
}
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
for name, label in labels.items():
    pts = sorted(series[name])
    if not pts:
        continue
    n = [p[0] for p in pts]
    left.plot(n, [p[2] for p in pts], marker="o", label=label)
    right.plot(n, [p[1] / 1000 for p in pts], marker="o", label=label)
for ax, title, unit in [(left, f"bytes on the wire ({k} keys differ)", "bytes"),
                        (right, f"time to bring a replica up to date ({k} keys differ)", "ms")]:
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("keys in the map")
    ax.set_ylabel(unit)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
left.legend(fontsize=8)
fig.tight_layout()
fig.savefig("docs/compare.png", dpi=110)
print("wrote docs/compare.png")
