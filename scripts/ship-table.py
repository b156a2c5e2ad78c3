#!/usr/bin/env python3
"""The ship-time table of issue #16's done-when, measured and summarised.

    scripts/ship-table.py run OUT_DIR TRACE_DIR... [--runs N] [--rounds R] [--fgbi BIN] [--links L]
    scripts/ship-table.py sum OUT_DIR [--docs]

`run` calls `fgbi eval TRACE --links L --rounds R --json` on every trace, N times over (trace by
trace inside each run, so a drift of the machine spreads over all traces), and keeps each result
as OUT_DIR/NAME.K.json (NAME: the trace directory's name; K: the run). Defaults: 3 runs, 3
rounds, the links 0.1,1,2.5,10,25,100, `target/release/fgbi` (built with `cargo build --release
--features cli`).

`sum` reads every OUT_DIR/NAME.K.json and prints, per trace and link, libfgbi's adapted ship
time over the fastest baseline's in the same run (below 1: libfgbi ships sooner): the median of
the runs, their range, and whether the median is within the done-when's bound (1.05 up to 25
Gbit/s, 1.5 at 100 Gbit/s); then what each method sends with the default configuration and the
encode / decode rates of libfgbi and zstd-1 (the README's results table), and every method's
median ship time at each link. `--docs` adds the tables of docs/performance.md (every method's
bytes and rates, the ship ratios with the fastest baseline, libfgbi's bytes and rates per link). A replica that did not verify is reported and
fails the summary (exit status 1).
"""
import glob
import json
import re
import os
import statistics
import subprocess
import sys

ORDER = ("proc-node", "py-sqlite", "java-hashmap", "redis-kv", "mariadb-oltp")


def bound(link):
    """The done-when's bound: within 5% of the fastest up to 25 Gbit/s, 1.5 times from links as
    fast as memory (100 Gbit/s) on."""
    return 1.5 if link >= 100 else 1.05


def run(argv):
    opts = {"--runs": "3", "--rounds": "3", "--fgbi": "target/release/fgbi",
            "--links": "0.1,1,2.5,10,25,100"}
    pos = []
    it = iter(argv)
    for a in it:
        if a in opts:
            v = next(it, None)
            if v is None:
                sys.exit(f"{a} needs a value")
            opts[a] = v
        else:
            pos.append(a)
    if len(pos) < 2:
        sys.exit("usage: ship-table.py run OUT_DIR TRACE_DIR... [--runs N] [--rounds R] [--fgbi BIN] [--links L]")
    out, traces = pos[0], pos[1:]
    os.makedirs(out, exist_ok=True)
    failed = False
    for k in range(1, int(opts["--runs"]) + 1):
        for t in traces:
            name = os.path.basename(os.path.normpath(t))
            dest = os.path.join(out, f"{name}.{k}.json")
            cmd = [opts["--fgbi"], "eval", t, "--links", opts["--links"],
                   "--rounds", opts["--rounds"], "--json"]
            print(f"run {k}: {' '.join(cmd)} > {dest}", file=sys.stderr, flush=True)
            with open(dest + ".part", "w") as f:
                rc = subprocess.run(cmd, stdout=f).returncode
            # eval exits 1 when a replica did not verify: its JSON says which, and `sum` reports
            # it; output that is not JSON (a crash) is left as .part
            try:
                with open(dest + ".part") as f:
                    json.load(f)
            except ValueError:
                print(f"run {k}: {name}: exit status {rc}, no JSON (kept as {dest}.part)",
                      file=sys.stderr, flush=True)
                failed = True
                continue
            if rc != 0:
                print(f"run {k}: {name}: exit status {rc}", file=sys.stderr, flush=True)
                failed = True
            os.replace(dest + ".part", dest)
    return 1 if failed else 0


def load(out):
    runs = {}
    for p in sorted(glob.glob(os.path.join(out, "*.json"))):
        m = re.fullmatch(r"(.+)\.(\d+)\.json", os.path.basename(p))
        if not m:
            continue
        name = m.group(1)
        with open(p) as f:
            runs.setdefault(name, []).append(json.load(f))
    if not runs:
        sys.exit(f"no NAME.K.json in {out}")
    # the README's order, then any other trace by name
    rank = {n: i for i, n in enumerate(ORDER)}
    return dict(sorted(runs.items(), key=lambda kv: (rank.get(kv[0], len(ORDER)), kv[0])))


def summarise(argv):
    dirs = [a for a in argv if not a.startswith("--")]
    if len(dirs) != 1:
        sys.exit("usage: ship-table.py sum OUT_DIR [--docs]")
    runs = load(dirs[0])
    failed = False
    links = sorted({s["link_gbps"] for rs in runs.values() for r in rs for s in r["ship"]})
    print("libfgbi adapted / fastest baseline, median of runs (range); * within the bound")
    print("| trace | runs | " + " | ".join(f"{l:g}" for l in links) + " Gbit/s |")
    print("|---|---|" + "---|" * len(links))
    within = total = 0
    for name, rs in runs.items():
        cells = []
        for l in links:
            ratios = []
            for r in rs:
                for s in r["ship"]:
                    if s["link_gbps"] != l:
                        continue
                    if not s["fgbi_adapted"]["verified"]:
                        failed = True
                        print(f"{name}: the adapted replica at {l:g} Gbit/s did not verify",
                              file=sys.stderr)
                    ratios.append(s["fgbi_adapted_vs_best_baseline"])
            if not ratios:
                cells.append("-")
                continue
            m = statistics.median(ratios)
            ok = m <= bound(l)
            total += 1
            within += ok
            spread = f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""
            cells.append(f"{'*' if ok else ''}{m:.2f}{spread}")
        print(f"| {name} | {len(rs)} | " + " | ".join(cells) + " |")
    print(f"{within} of {total} cells within the bound")
    print()
    print("MiB sent over all epochs (default configuration), encode / decode GB/s of dirty memory,")
    print("medians of runs")
    print("| trace | raw | XBZRLE | lz4 | zstd-1 | libfgbi | libfgbi encode / decode "
          "| zstd-1 encode / decode |")
    print("|---|---|---|---|---|---|---|---|")
    for name, rs in runs.items():
        if not all(r["fgbi"]["verified"] for r in rs):
            failed = True
            print(f"{name}: the default replica did not verify", file=sys.stderr)

        def mib(m):
            return f'{statistics.median(r[m]["bytes_sent"] for r in rs) / 2**20:.1f}'

        def rates(m):
            enc = statistics.median(r[m]["dirty_bytes"] / r[m]["encode_seconds"] for r in rs)
            dec = statistics.median(r[m]["dirty_bytes"] / r[m]["decode_seconds"] for r in rs)
            return f"{enc / 1e9:.2f} / {dec / 1e9:.2f}"

        cells = [mib(m) for m in ("raw", "xbzrle", "lz4", "zstd-1", "fgbi")]
        print(f"| {name} | " + " | ".join(cells) + f" | {rates('fgbi')} | {rates('zstd-1')} |")
    if "--docs" in argv:
        docs_tables(runs, links)
    print()
    print("median ship time in ms per method and link")
    for name, rs in runs.items():
        print(f"  {name}")
        methods = sorted({m for r in rs for s in r["ship"] for m in s["seconds"]})
        for l in links:
            row = []
            for m in methods:
                v = [s["seconds"][m] for r in rs for s in r["ship"]
                     if s["link_gbps"] == l and m in s["seconds"]]
                row.append(f"{m} {statistics.median(v) * 1e3:.1f}" if v else f"{m} -")
            print(f"    {l:g}: " + ", ".join(row))
    return 1 if failed else 0


METHODS = ("raw", "zero+raw", "xbzrle", "zlib-1", "lz4", "zstd-1", "fgbi")


def docs_tables(runs, links):
    """The tables of docs/performance.md, medians of the runs."""
    med = statistics.median

    def by_ratio(rs, l):
        """Every run's ship row at link `l`, by libfgbi's ratio: the middle one is the median."""
        rows = (s for r in rs for s in r["ship"] if s["link_gbps"] == l)
        return sorted(rows, key=lambda s: s["fgbi_adapted_vs_best_baseline"])

    print()
    print("| trace | " + " | ".join(METHODS) + " | fgbi / zstd-1 | fgbi / xbzrle |")
    print("|---|" + "---|" * (len(METHODS) + 2))
    for name, rs in runs.items():
        mib = {m: med(r[m]["bytes_sent"] for r in rs) / 2**20 for m in METHODS}
        cells = [f"{mib[m]:.1f}" for m in METHODS[:-1]] + [f"**{mib['fgbi']:.1f}**"]
        cells += [f"{mib['fgbi'] / mib['zstd-1']:.2f}", f"{mib['fgbi'] / mib['xbzrle']:.2f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    print("| trace | " + " | ".join(METHODS) + " |")
    print("|---|" + "---|" * len(METHODS))
    for name, rs in runs.items():
        cells = []
        for m in METHODS:
            enc = med(r[m]["dirty_bytes"] / r[m]["encode_seconds"] for r in rs) / 1e9
            dec = med(r[m]["dirty_bytes"] / r[m]["decode_seconds"] for r in rs) / 1e9
            cells.append(f"{enc:.2f} / {dec:.2f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    print("| trace | " + " | ".join(f"{l:g} Gbit/s" for l in links) + " |")
    print("|---|" + "---|" * len(links))
    for name, rs in runs.items():
        cells = []
        for l in links:
            rows = by_ratio(rs, l)
            if not rows:
                cells.append("-")
                continue
            ratios = [s["fgbi_adapted_vs_best_baseline"] for s in rows]
            # the fastest baseline of the run whose ratio is the median one
            best = rows[len(rows) // 2]["best_baseline"]
            m = med(ratios)
            spread = f"; {min(ratios):.2f}-{max(ratios):.2f}" if max(ratios) - min(ratios) >= 0.01 else ""
            text = f"{m:.2f} ({best}{spread})"
            cells.append(f"**{text}**" if m <= bound(l) else text)
        print(f"| {name} | " + " | ".join(cells) + " |")
    for title, cell in (
        ("MiB libfgbi sends told each link rate", lambda a: f"{a['bytes_sent'] / 2**20:.1f}"),
        ("encode / decode GB/s of dirty memory told each link rate",
         lambda a: f"{a['dirty_bytes'] / a['encode_seconds'] / 1e9:.2f} / "
                   f"{a['dirty_bytes'] / a['decode_seconds'] / 1e9:.2f}"),
    ):
        print()
        print(title)
        print("| trace | " + " | ".join(f"{l:g}" for l in links) + " |")
        print("|---|" + "---|" * len(links))
        for name, rs in runs.items():
            cells = []
            for l in links:
                rows = by_ratio(rs, l)  # the run whose ratio is the median one
                cells.append(cell(rows[len(rows) // 2]["fgbi_adapted"]) if rows else "-")
            print(f"| {name} | " + " | ".join(cells) + " |")


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("run", "sum"):
        sys.exit(__doc__)
    if sys.argv[1] == "run":
        return run(sys.argv[2:])
    return summarise(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
