#!/usr/bin/env python3
"""Markdown tables of migrate.sh --json output: integration/qemu/table.py RUNS.json... (or stdin).

XBZRLE runs (stock, fgbi-xbzrle) and multifd runs (multifd-*) get a table each."""
import fileinput
import json

rows = [json.loads(line) for line in fileinput.input() if line.strip().startswith("{")]
xbzrle = [r for r in rows if not r.get("channels")]
multifd = [r for r in rows if r.get("channels")]


def rate(bw):
    if not bw:
        return "no limit"
    return f"{bw / 2**20:g} MiB/s"


def cpu(*vals):
    return "-" if any(v is None for v in vals) else f"{sum(vals):.2f} s"


if xbzrle:
    print("| mode | run | total | downtime | rounds | wire bytes | XBZRLE pages | cache miss "
          "| overflow | encoding rate | libfgbi calls (sent encoded) | verified |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in xbzrle:
        # page bytes / XBZRLE bytes over the whole migration
        er = r["xbzrle_pages"] * 4096 / r["xbzrle_bytes"] if r["xbzrle_bytes"] else 0
        f = r.get("fgbi_encode")
        calls = f"{f['calls']:,} ({f['encoded']:,})" if f else "-"
        print(f"| {r['mode']} | {r['run']} | {r['total_ms'] / 1000:.1f} s | {r['downtime_ms']} ms "
              f"| {r['rounds']} | {r['wire_bytes'] / 1e6:.1f} MB | {r['xbzrle_pages']:,} "
              f"| {r['xbzrle_cache_miss']:,} | {r['xbzrle_overflow']:,} | {er:.2f} "
              f"| {calls} | {str(r['verified']).lower()} |")
if xbzrle and multifd:
    print()
if multifd:
    print("| mode | max-bandwidth | run | total | downtime | rounds | wire bytes "
          "| source CPU (main + send) | destination CPU (recv) | verified |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in multifd:
        mode = r["mode"]
        conf = r.get("fgbi_multifd_config") or {}
        if conf.get("link_rate_per_channel") == 0:
            mode += " (link rate unknown: no gates)"
        if r.get("converged", True):
            total = f"{r['total_ms'] / 1000:.2f} s"
            down = f"{r['downtime_ms']} ms"
        else:
            total = f"did not converge in {r['wall_ms'] / 1000:.0f} s"
            down = "-"
        print(f"| {mode} | {rate(r['max_bandwidth'])} | {r['run']} | {total} | {down} "
              f"| {r['rounds']} | {r['wire_bytes'] / 1e6:.1f} MB "
              f"| {cpu(r.get('cpu_src_main_s'), r.get('cpu_src_send_s'))} "
              f"| {cpu(r.get('cpu_dst_recv_s'))} | {str(r['verified']).lower()} |")
