#!/usr/bin/env python3
"""Markdown table of migrate.sh --json output: integration/qemu/table.py RUNS.json... (or stdin)."""
import fileinput
import json

rows = [json.loads(line) for line in fileinput.input() if line.strip().startswith("{")]
print("| mode | run | total | downtime | rounds | wire bytes | XBZRLE pages | cache miss "
      "| overflow | encoding rate | libfgbi calls (sent encoded) | verified |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for r in rows:
    # page bytes / XBZRLE bytes over the whole migration
    rate = r["xbzrle_pages"] * 4096 / r["xbzrle_bytes"] if r["xbzrle_bytes"] else 0
    f = r.get("fgbi_encode")
    calls = f"{f['calls']:,} ({f['encoded']:,})" if f else "-"
    print(f"| {r['mode']} | {r['run']} | {r['total_ms'] / 1000:.1f} s | {r['downtime_ms']} ms "
          f"| {r['rounds']} | {r['wire_bytes'] / 1e6:.1f} MB | {r['xbzrle_pages']:,} "
          f"| {r['xbzrle_cache_miss']:,} | {r['xbzrle_overflow']:,} | {rate:.2f} "
          f"| {calls} | {str(r['verified']).lower()} |")
