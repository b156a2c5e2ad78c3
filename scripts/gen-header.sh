#!/usr/bin/env bash
# Regenerates the C header from src/ffi with the pinned cbindgen (a build-dependency used only
# with the `header` feature). Usage: scripts/gen-header.sh [OUT]   (default include/libfgbi.h)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${1:-$root/include/libfgbi.h}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
# `check` runs the build script (which writes the header) without building the library itself.
FGBI_REGEN_HEADER="$out" cargo check --quiet --lib --features header
[ -s "$out" ] || { echo "gen-header: $out was not written" >&2; exit 1; }
