#!/usr/bin/env bash
# Times libfgbi's fgbi_xbzrle_encode against QEMU 10.0's own XBZRLE encoders, compiled from
# Debian's QEMU 10.0.2 source (migration/xbzrle.c, never copied into this repository), on
# synthetic page pairs and on real dirty page pairs from the traces. See README.md.
#
# Usage: bench/qemu-xbzrle/run.sh [--quick] [DRIVER ARGS...]
#   --quick       1024 pairs per set, 3 repetitions (a smoke run, about a minute)
#   DRIVER ARGS   replace the default driver arguments (--synthetic, --trace DIR for each trace
#                 present, --reps 11, --pairs 8192); see driver.c
# Environment: FGBI_QEMU_CACHE (default ~/.cache/fgbi-qemu): where QEMU's tarball is (fetched
# with apt-get source --tar-only when missing) and where everything is built
# ($FGBI_QEMU_CACHE/qemu-xbzrle-bench); FGBI_TRACES (default /work/traces): the trace directories.
# The result (markdown tables) goes to stdout and to $FGBI_QEMU_CACHE/qemu-xbzrle-bench/last-run.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
FGBI_LOG_NAME=qemu-xbzrle
# shellcheck source=../../integration/qemu/lib.sh
. "$root/integration/qemu/lib.sh"

driver_args=()
quick=0
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=1 ;;
    -h | --help)
        sed -n '2,14p' "$0"
        exit 0
        ;;
    *) driver_args+=("$1") ;;
    esac
    shift
done

work="$FGBI_QEMU_CACHE/qemu-xbzrle-bench"
traces="${FGBI_TRACES:-/work/traces}"
mkdir -p "$work"

# 1. QEMU's encoder: migration/xbzrle.{c,h} from Debian's .orig tarball, extracted unmodified.
command -v gcc >/dev/null && command -v objcopy >/dev/null && command -v xz >/dev/null ||
    fgbi_need_pkgs "a C compiler, objcopy and xz for the benchmark" gcc binutils xz-utils
fgbi_fetch_qemu_tarball "QEMU's migration/xbzrle.c for the benchmark"
qsrc="$work/qemu-$QEMU_UPSTREAM_VERSION"
if [ ! -f "$qsrc/migration/xbzrle.c" ] || [ "$FGBI_QEMU_TARBALL" -nt "$qsrc/migration/xbzrle.c" ]; then
    fgbi_log "extracting migration/xbzrle.{c,h} from $FGBI_QEMU_TARBALL"
    rm -rf "$qsrc"
    tar -C "$work" -xf "$FGBI_QEMU_TARBALL" \
        "qemu-$QEMU_UPSTREAM_VERSION/migration/xbzrle.c" "qemu-$QEMU_UPSTREAM_VERSION/migration/xbzrle.h"
    touch "$qsrc/migration/xbzrle.c"
fi

# 2. libfgbi's C library (scripts/build-c.sh; cargo is incremental).
fgbi_log "libfgbi: scripts/build-c.sh $work/libfgbi"
"$root/scripts/build-c.sh" "$work/libfgbi" 2>&1 | sed 's/^/  /' >&2
static_libs="$(sed -n 's/^Libs.private: //p' "$work/libfgbi/lib/pkgconfig/fgbi.pc")"

# 3. QEMU's xbzrle.c with QEMU 10.0.2's own compiler flags for it (from its meson build: -O2, no
#    LTO), against the shim headers (shim/: only what xbzrle.c includes). Four builds:
#    with CONFIG_AVX512BW_OPT (xbzrle_encode_buffer dispatches on cpuinfo, as QEMU does: AVX-512BW
#    here) or without (the scalar encoder), each with the ULEB128 helpers out of line (as in QEMU,
#    where they live in util/cutils.c) or inlined (FGBI_SHIM_INLINE_ULEB128: QEMU's best case).
#    The symbols are renamed for the driver with objcopy.
qemu_cflags=(-m64 -std=gnu11 -O2 -fstack-protector-strong -mcx16 -msse2 -D_GNU_SOURCE
    -D_FILE_OFFSET_BITS=64 -D_LARGEFILE_SOURCE -fno-strict-aliasing -fno-common -fwrapv
    -ftrivial-auto-var-init=zero -fzero-call-used-regs=used-gpr -fPIE)
obj="$work/obj"
rm -rf "$obj"
mkdir -p "$obj"
qcc() { gcc "${qemu_cflags[@]}" -iquote "$here/shim" "$@"; }
qcc -c "$here/shim/shim.c" -o "$obj/shim.o"
build_qemu() { # OUT ENC_NAME DEC_NAME extra cflags...
    local out="$1" enc="$2" dec="$3"
    shift 3
    qcc "$@" -c "$qsrc/migration/xbzrle.c" -o "$out.tmp.o"
    objcopy --redefine-sym "xbzrle_encode_buffer=$enc" --redefine-sym "xbzrle_decode_buffer=$dec" \
        "$out.tmp.o" "$out"
    rm -f "$out.tmp.o"
}
build_qemu "$obj/xbzrle-dispatch.o" qemu_enc_dispatch qemu_dec_unused1 -DCONFIG_AVX512BW_OPT
build_qemu "$obj/xbzrle-scalar.o" qemu_enc_scalar qemu_dec
build_qemu "$obj/xbzrle-dispatch-inl.o" qemu_enc_dispatch_inl qemu_dec_unused2 -DCONFIG_AVX512BW_OPT \
    -DFGBI_SHIM_INLINE_ULEB128
build_qemu "$obj/xbzrle-scalar-inl.o" qemu_enc_scalar_inl qemu_dec_unused3 -DFGBI_SHIM_INLINE_ULEB128
nm "$obj/xbzrle-dispatch.o" | grep -q ' t xbzrle_encode_buffer_avx512$' ||
    fgbi_die "xbzrle.c was compiled without its AVX-512BW encoder"

# 4. The driver, linked with libfgbi.a.
# shellcheck disable=SC2086 # static_libs is a list of -l flags
gcc -O2 -std=gnu11 -Wall -Wextra -I"$work/libfgbi/include" "$here/driver.c" "$obj"/*.o \
    "$work/libfgbi/lib/libfgbi.a" $static_libs -o "$work/driver"

# 5. Run.
if [ "${#driver_args[@]}" -eq 0 ]; then
    driver_args=(--synthetic)
    for t in proc-node py-sqlite java-hashmap redis-kv mariadb-oltp; do
        if [ -f "$traces/$t/epoch-0001.img" ]; then
            driver_args+=(--trace "$traces/$t")
        else
            fgbi_log "no trace $traces/$t: skipped"
        fi
    done
    if [ "$quick" = 1 ]; then
        driver_args+=(--pairs 1024 --reps 3)
    else
        driver_args+=(--pairs 8192 --reps 11)
    fi
fi
fgbi_log "running $work/driver ${driver_args[*]}"
{
    echo "QEMU $QEMU_UPSTREAM_VERSION migration/xbzrle.c sha256 $(sha256sum "$qsrc/migration/xbzrle.c" | cut -c1-16)...;" \
        "libfgbi $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?');" \
        "$(gcc --version | head -n1); $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'); load $(cut -d' ' -f1-3 /proc/loadavg)"
    "$work/driver" "${driver_args[@]}"
} | tee "$work/last-run.md"
