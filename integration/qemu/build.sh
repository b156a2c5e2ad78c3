#!/usr/bin/env bash
# Builds libfgbi's C library and a qemu-system-x86_64 (QEMU 10.0.2, Debian's source package) whose
# migration code encodes XBZRLE pages with libfgbi's fgbi_xbzrle_encode (patches/*.patch).
#
# Usage: integration/qemu/build.sh [--print-binary]
#
# Everything goes under $FGBI_QEMU_CACHE (default ~/.cache/fgbi-qemu), outside what git tracks:
#   libfgbi/                  libfgbi's C library (scripts/build-c.sh PREFIX): libfgbi.a, fgbi.pc
#   src/qemu-10.0.2/          QEMU's source (apt-get source, Debian's .orig tarball) + our patches
#   build/qemu-system-x86_64  the patched binary (only this target: x86_64-softmmu)
# Safe to re-run: a finished build whose patches, configure line and libfgbi sources did not
# change is reused as it is; otherwise only what changed is rebuilt (cargo and ninja are
# incremental; a changed patch series is reversed and the new one applied to the same tree).
# --print-binary: print the binary's path on stdout at the end (for migrate.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
FGBI_LOG_NAME=build.sh
# shellcheck source=lib.sh
. "$here/lib.sh"

print_binary=0
case "${1:-}" in
"") ;;
--print-binary) print_binary=1 ;;
-h | --help)
    sed -n '2,15p' "$0"
    exit 0
    ;;
*) fgbi_die "unknown argument '$1' (usage: build.sh [--print-binary])" ;;
esac

cache="$FGBI_QEMU_CACHE"
prefix="$cache/libfgbi"
srcdir="$cache/src/qemu-$QEMU_UPSTREAM_VERSION"
tarball="$FGBI_QEMU_TARBALL"
build="$cache/build"
binary="$build/qemu-system-x86_64"
stamp="$build/.fgbi-build-key"
patches=("$here"/patches/*.patch)

# Minimal configure: one target, no docs, tools, guest agent, firmware, GUI or network back-ends.
configure_args=(
    --python=/usr/bin/python3 --prefix="$cache/install"
    --target-list=x86_64-softmmu --enable-fgbi
    --disable-docs --disable-tools --disable-guest-agent --disable-install-blobs
    --disable-capstone --disable-slirp --disable-debug-info --disable-rust
    --disable-werror --disable-plugins
)

done_msg() {
    fgbi_log "$1"
    [ "$print_binary" = 1 ] && echo "$binary"
    exit 0
}

# The build key: everything a finished build depends on.
libfgbi_files() {
    (cd "$root" && git ls-files -- src include build.rs Cargo.toml Cargo.lock cbindgen.toml scripts/build-c.sh 2>/dev/null) ||
        true
}
build_key() {
    {
        echo "qemu $QEMU_DEB_VERSION"
        echo "configure ${configure_args[*]}"
        sha256sum "${patches[@]}" | sed "s|$here/||"
        (cd "$root" && libfgbi_files | LC_ALL=C sort | xargs -d '\n' sha256sum)
    } | sha256sum | cut -c1-64
}
# One build at a time per cache (a second build.sh waits for the first).
mkdir -p "$cache"
exec 9>"$cache/.build.lock"
flock -w 3600 9 || fgbi_die "another build.sh holds $cache/.build.lock"

key="$(build_key)"
if [ -x "$binary" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then
    done_msg "reusing $binary (patches, configure line and libfgbi sources unchanged since it was built)"
fi

# 1. Packages (installed only when missing).
fgbi_need_pkgs "tools and libraries to build QEMU" \
    build-essential pkg-config ninja-build python3 python3-venv libglib2.0-dev libpixman-1-dev \
    zlib1g-dev libfdt-dev bzip2 xz-utils dpkg-dev
fgbi_need_pkgs "QEMU 10.0 needs meson >= 1.5 (Debian 12 has 1.0)" -t bookworm-backports meson python3-pycotap
command -v cargo >/dev/null || fgbi_die "cargo is needed to build libfgbi"

# 2. libfgbi's C library (cargo is incremental); a changed libfgbi.a forces QEMU's link step.
fgbi_log "libfgbi: scripts/build-c.sh $prefix (why: QEMU links libfgbi.a, found through $prefix/lib/pkgconfig/fgbi.pc)"
old_lib="$(sha256sum "$prefix/lib/libfgbi.a" 2>/dev/null || true)"
"$root/scripts/build-c.sh" "$prefix"
if [ "$old_lib" != "$(sha256sum "$prefix/lib/libfgbi.a")" ]; then
    rm -f "$binary"
fi

# 3. QEMU's source: Debian's .orig tarball of the same 10.0.2 as the stock binary.
unpack() {
    fgbi_fetch_qemu_tarball "the source to patch"
    fgbi_log "unpacking $tarball into $srcdir"
    rm -rf "$srcdir"
    tar -C "$cache/src" -xf "$tarball"
    [ -f "$srcdir/VERSION" ] || fgbi_die "$tarball did not unpack to $srcdir"
    [ "$(cat "$srcdir/VERSION")" = "$QEMU_UPSTREAM_VERSION" ] || fgbi_die "unexpected QEMU version $(cat "$srcdir/VERSION")"
    # The repacked source has no firmware; pc-bios/meson.build still wants the edk2 blobs of the
    # x86_64 target: empty bzip2 files let configure pass (we run with Debian's firmware, -L).
    local f
    for f in $(sed -n "s/^ *'\(edk2-[a-z0-9_-]*\.fd\)',$/\1/p" "$srcdir/pc-bios/meson.build"); do
        [ -e "$srcdir/pc-bios/$f.bz2" ] || bzip2 -c </dev/null >"$srcdir/pc-bios/$f.bz2"
    done
    mkdir -p "$srcdir/.fgbi-applied"
    rm -rf "$build"
}
[ -d "$srcdir/.fgbi-applied" ] || unpack

# 4. The patch series: from the first patch that differs from the applied one, reverse the applied
#    patches and apply the new ones (only the files they touch change, so ninja rebuilds only what
#    depends on them).
applied=()
for p in "$srcdir"/.fgbi-applied/*.patch; do
    [ -e "$p" ] && applied+=("$p")
done
first=0
while [ "$first" -lt "${#patches[@]}" ] && [ "$first" -lt "${#applied[@]}" ] &&
    [ "$(basename "${patches[$first]}")" = "$(basename "${applied[$first]}")" ] &&
    cmp -s "${patches[$first]}" "${applied[$first]}"; do
    first=$((first + 1))
done
for ((i = ${#applied[@]} - 1; i >= first; i--)); do
    fgbi_log "reversing $(basename "${applied[$i]}") (the patch series changed)"
    if ! patch -d "$srcdir" -p1 -R -s --dry-run <"${applied[$i]}" >/dev/null 2>&1; then
        fgbi_log "cannot reverse $(basename "${applied[$i]}"): unpacking the source again"
        unpack
        first=0
        break
    fi
    patch -d "$srcdir" -p1 -R -s <"${applied[$i]}"
    rm -f "${applied[$i]}"
done
for ((i = first; i < ${#patches[@]}; i++)); do
    p="${patches[$i]}"
    fgbi_log "applying $(basename "$p")"
    patch -d "$srcdir" -p1 -s --no-backup-if-mismatch <"$p" ||
        fgbi_die "$(basename "$p") does not apply to QEMU $QEMU_UPSTREAM_VERSION (source: $srcdir)"
    cp "$p" "$srcdir/.fgbi-applied/"
done

# 5. Configure (once, or when the configure line changed), then build the one binary.
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
if [ ! -f "$build/build.ninja" ] || [ "$(cat "$build/.fgbi-configure" 2>/dev/null)" != "${configure_args[*]}" ]; then
    rm -rf "$build"
    mkdir -p "$build"
    fgbi_log "configure ${configure_args[*]} (in $build)"
    (cd "$build" && "$srcdir/configure" "${configure_args[@]}") >"$build/configure.log" 2>&1 ||
        {
            tail -n 40 "$build/configure.log" >&2
            fgbi_die "configure failed (log: $build/configure.log)"
        }
    printf '%s' "${configure_args[*]}" >"$build/.fgbi-configure"
fi
grep -Eq '^#define CONFIG_FGBI( 1)?$' "$build/config-host.h" ||
    fgbi_die "configure did not enable libfgbi (CONFIG_FGBI): see $build/configure.log"

jobs="${FGBI_QEMU_JOBS:-$(nproc)}"
fgbi_log "ninja qemu-system-x86_64 (-j$jobs, nice 10; log: $build/ninja.log)"
t0=$SECONDS
nice -n 10 ninja -C "$build" -j "$jobs" qemu-system-x86_64 >"$build/ninja.log" 2>&1 ||
    {
        tail -n 40 "$build/ninja.log" >&2
        fgbi_die "the QEMU build failed (log: $build/ninja.log)"
    }
fgbi_log "ninja took $((SECONDS - t0)) s"

# 6. The binary must carry libfgbi's encoder (linked statically) and call it from ram.c.
nm "$binary" | grep ' T fgbi_xbzrle_encode$' >/dev/null ||
    fgbi_die "$binary does not contain fgbi_xbzrle_encode: libfgbi was not linked"
echo "$key" >"$stamp"
done_msg "installed $binary (QEMU $QEMU_UPSTREAM_VERSION + $(basename -a "${patches[@]}" | tr '\n' ' ')linked with libfgbi $(sed -n 's/^Version: //p' "$prefix/lib/pkgconfig/fgbi.pc"))"
