#!/usr/bin/env bash
# C-side checks of libfgbi, from a fresh clone, without stdin:
#  1. the committed header matches what cbindgen generates from src/ffi ("header out of date");
#  2. builds libfgbi.a / libfgbi.so and installs them into a temporary prefix (build-c.sh);
#  3. checks the exported symbols (only fgbi_*; no C deflate/LZ4 symbols inside);
#  4. compiles examples/c/epoch_loop.c and tests/c/test_capi.c with -Wall -Wextra -Werror against
#     the static and the shared library (link line from pkg-config) and runs them;
#  5. runs them under valgrind, then built with -fsanitize=address,undefined (when that links).
# Missing tools (C compiler, pkg-config, valgrind) are installed with apt-get.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

need=()
command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v valgrind >/dev/null || need+=(valgrind)
if [ ${#need[@]} -gt 0 ]; then
    echo "c-tests: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq </dev/null && apt-get install -y -qq "${need[@]}" </dev/null >/dev/null
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
total_pass=0
total_fail=0

echo "c-tests: header drift check"
bash scripts/gen-header.sh "$tmp/libfgbi.h"
if ! diff -u include/libfgbi.h "$tmp/libfgbi.h" >"$tmp/header.diff"; then
    head -n 40 "$tmp/header.diff"
    echo "header out of date: run scripts/gen-header.sh and commit include/libfgbi.h"
    exit 1
fi

echo "c-tests: building the libraries"
prefix="$tmp/prefix"
bash scripts/build-c.sh "$prefix"
lib="$prefix/lib"

echo "c-tests: exported symbols"
extra="$(nm -D --defined-only "$lib/libfgbi.so" | awk '{print $3}' | grep -v '^fgbi_' || true)"
if [ -n "$extra" ]; then
    echo "libfgbi.so exports symbols without the fgbi_ prefix:"; echo "$extra"; exit 1
fi
csyms="$(nm -g --defined-only "$lib/libfgbi.a" 2>/dev/null | awk 'NF==3 {print $3}' |
    grep -E '^(deflate|inflate|compress|uncompress|crc32|adler32|z_|LZ4_|LZ4F_)' || true)"
if [ -n "$csyms" ]; then
    echo "libfgbi.a carries C compression symbols:"; echo "$csyms"; exit 1
fi
echo "  libfgbi.so exports $(nm -D --defined-only "$lib/libfgbi.so" | grep -c ' fgbi_') fgbi_* symbols and nothing else; no C deflate/LZ4 symbols in libfgbi.a"

export PKG_CONFIG_PATH="$lib/pkgconfig"
cflags=(-std=c11 -Wall -Wextra -Werror -g -O1 -pthread $(pkg-config --cflags fgbi))
shared_link=($(pkg-config --libs fgbi) "-Wl,-rpath,$lib")
# libfgbi.a itself, then what it needs from the system (Libs.private)
static_link=("$lib/libfgbi.a" $(pkg-config --static --libs fgbi | tr ' ' '\n' | grep -v -e '^-lfgbi$' -e '^-L'))

if command -v c++ >/dev/null; then
    echo "c-tests: header compiles as C++"
    printf '#include <libfgbi.h>\nint main() { return fgbi_version() == nullptr; }\n' >"$tmp/cxx.cpp"
    c++ -std=c++11 -Wall -Wextra -Werror $(pkg-config --cflags fgbi) "$tmp/cxx.cpp" "${shared_link[@]}" -o "$tmp/cxx"
    "$tmp/cxx"
fi

# run NAME CMD...: runs a program, checks its "N passed, M failed" line when it prints one
run() {
    local name="$1"; shift
    local out="$tmp/$name.out"
    if ! "$@" >"$out" 2>&1; then
        cat "$out"; echo "c-tests: $name FAILED"; exit 1
    fi
    local line
    line="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n1 || true)"
    if [ -n "$line" ]; then
        total_pass=$((total_pass + ${line%% passed*}))
        local f="${line#*, }"; total_fail=$((total_fail + ${f%% failed}))
        echo "  $name: $line"
    else
        echo "  $name: ok ($(tail -n1 "$out"))"
    fi
}

for kind in static shared; do
    echo "c-tests: $kind library"
    if [ "$kind" = static ]; then link=("${static_link[@]}"); else link=("${shared_link[@]}"); fi
    cc "${cflags[@]}" examples/c/epoch_loop.c "${link[@]}" -o "$tmp/epoch_loop-$kind"
    cc "${cflags[@]}" tests/c/test_capi.c "${link[@]}" -o "$tmp/test_capi-$kind"
    if [ "$kind" = shared ]; then
        ldd "$tmp/test_capi-shared" | grep 'libfgbi.so.0 =>' >/dev/null || { echo "not linked to libfgbi.so.0"; exit 1; }
    fi
    run "epoch_loop-$kind" "$tmp/epoch_loop-$kind"
    run "test_capi-$kind" "$tmp/test_capi-$kind"
done

echo "c-tests: valgrind"
vg=(valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite)
run "epoch_loop-valgrind" "${vg[@]}" "$tmp/epoch_loop-shared"
run "test_capi-valgrind" "${vg[@]}" "$tmp/test_capi-shared"

echo "c-tests: AddressSanitizer + UndefinedBehaviorSanitizer"
san=(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
if cc "${cflags[@]}" "${san[@]}" tests/c/test_capi.c "${static_link[@]}" -o "$tmp/test_capi-asan" 2>"$tmp/asan.log" &&
    cc "${cflags[@]}" "${san[@]}" examples/c/epoch_loop.c "${static_link[@]}" -o "$tmp/epoch_loop-asan" 2>>"$tmp/asan.log"; then
    # allocator_may_return_null: a request no allocator can meet (test_budgets) fails as it does
    # without ASan, so the library's out-of-memory path is what runs
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allocator_may_return_null=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    run "epoch_loop-asan" "$tmp/epoch_loop-asan"
    run "test_capi-asan" "$tmp/test_capi-asan"
else
    echo "  skipped: the sanitizers do not link here"; cat "$tmp/asan.log"
fi

echo "c-tests: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
