#!/usr/bin/env python3
"""Prints a Markdown table of criterion results (median time, throughput) from
$CARGO_TARGET_DIR/criterion (default target/criterion). Optional args: group prefixes to keep.
Throughput in GB/s (10^9 bytes per second) or Mops/s, from the median of the samples."""
import json, os, sys, glob

root = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "criterion")
prefixes = sys.argv[1:]
rows = []
for bench in sorted(glob.glob(os.path.join(root, "**", "new", "benchmark.json"), recursive=True)):
    d = os.path.dirname(bench)
    b = json.load(open(bench))
    e = json.load(open(os.path.join(d, "estimates.json")))
    name = b["full_id"]
    if prefixes and not any(name.startswith(p) for p in prefixes):
        continue
    med = e["median"]["point_estimate"]  # ns per iteration
    tp = b.get("throughput") or {}
    if "Bytes" in tp:
        val = f'{tp["Bytes"] / med:.2f} GB/s'
    elif "Elements" in tp:
        val = f'{tp["Elements"] / med * 1e3:.1f} Mops/s'
    else:
        val = ""
    rows.append((name, f"{med / 1e6:.3f} ms", val))
print("| bench | median time/iter | throughput |")
print("|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")
