#!/usr/bin/env python3
"""How far general-purpose compressors with more context than one page get on a trace.

For each epoch of a `fgbi record` trace, the pages that changed since the previous epoch (all
non-zero pages for epoch 0) are written back to back, and compressed with the zstd command-line
tool in three ways:

  zstd-1 stream   the epoch's dirty pages as one stream (matches across pages of the epoch)
  zstd-1 history  the same, with the whole previous image as dictionary (--patch-from, --long)
  zstd-3 history  the same at level 3

The sums over all epochs (MiB) bound what a per-page encoder could gain from cross-page and
cross-epoch matches; compare with `fgbi eval TRACE` (libfgbi and per-page zstd-1).

Usage: scripts/headroom.py TRACE_DIR [--xz]   (--xz adds xz -6 of each epoch's stream: slow)
Needs: zstd (and xz) on PATH; temporary files in $TMPDIR.
"""
import os
import subprocess
import sys
import tempfile

PS = 4096


def size(cmd, data=None):
    out = subprocess.run(cmd, input=data, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
    return len(out.stdout)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    use_xz = "--xz" in sys.argv
    if len(args) != 1:
        sys.exit(__doc__)
    trace = args[0]
    names = sorted(n for n in os.listdir(trace) if n.startswith("epoch-") and n.endswith(".img"))
    cols = ["dirty MiB", "zstd-1 stream", "zstd-1 history", "zstd-3 history"] + (["xz-6 stream"] if use_xz else [])
    totals = [0] * len(cols)
    print("epoch " + " ".join(f"{c:>15}" for c in cols))
    prev_path, prev = None, None
    with tempfile.TemporaryDirectory() as tmp:
        for i, name in enumerate(names):
            path = os.path.join(trace, name)
            cur = open(path, "rb").read()
            pages = []
            for off in range(0, len(cur), PS):
                p = cur[off:off + PS]
                if prev is None:
                    if p.count(0) != PS:
                        pages.append(p)
                elif prev[off:off + PS] != p:
                    pages.append(p)
            dirty = b"".join(pages)
            stream = os.path.join(tmp, "dirty")
            open(stream, "wb").write(dirty)
            row = [len(dirty), size(["zstd", "-1", "-c", stream])]
            for level in ("-1", "-3"):
                cmd = ["zstd", level, "--long=28", "-c", stream]
                if prev_path is not None:
                    cmd[2:2] = [f"--patch-from={prev_path}"]
                row.append(size(cmd))
            if use_xz:
                row.append(size(["xz", "-6", "-T1", "-c", stream]))
            totals = [t + r for t, r in zip(totals, row)]
            print(f"{i:>5} " + " ".join(f"{r / 2**20:>15.2f}" for r in row))
            prev_path, prev = path, cur
    print("  all " + " ".join(f"{t / 2**20:>15.2f}" for t in totals))


if __name__ == "__main__":
    main()
