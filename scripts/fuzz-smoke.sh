#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a short time (default 30 s each; FUZZ_SECONDS to change)
# from a generated seed corpus, and fails on any crash. Prints executions per target.
# Installs cargo-fuzz (pinned) when missing; uses the nightly toolchain when there is one, else
# stable with RUSTC_BOOTSTRAP=1 (cargo-fuzz passes -Z flags).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
secs="${FUZZ_SECONDS:-30}"
CARGO_FUZZ_VERSION=0.13.2

if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    echo "fuzz-smoke: installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "=$CARGO_FUZZ_VERSION" --locked </dev/null
fi
if cargo +nightly --version >/dev/null 2>&1; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi

corpus="$root/fuzz/corpus"
cargo run --quiet --release --example gen_fuzz_corpus -- "$corpus"
targets=$("${fuzz[@]}" list)
"${fuzz[@]}" build -O </dev/null
summary=()
for t in $targets; do
    mkdir -p "$corpus/$t"
    log="$(mktemp)"
    echo "fuzz-smoke: $t for ${secs}s"
    if ! "${fuzz[@]}" run -O "$t" "$corpus/$t" -- -max_total_time="$secs" -print_final_stats=1 </dev/null >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "fuzz-smoke: $t CRASHED (artifact under fuzz/artifacts/$t)"
        exit 1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    summary+=("$t: ${runs:-?} executions, no crash")
    rm -f "$log"
done
printf 'fuzz-smoke: %s\n' "${summary[@]}"
