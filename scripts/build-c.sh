#!/usr/bin/env bash
# Builds the C libraries and installs them with the header and a pkg-config file:
#   PREFIX/lib/libfgbi.a
#   PREFIX/lib/libfgbi.so -> libfgbi.so.MAJOR -> libfgbi.so.MAJOR.MINOR.PATCH (soname libfgbi.so.MAJOR)
#   PREFIX/include/libfgbi.h
#   PREFIX/lib/pkgconfig/fgbi.pc
# Usage: scripts/build-c.sh [PREFIX]   (default /usr/local)
# Rust users of the crate are unaffected: the C artifacts are built here, with the `capi` feature,
# not declared as crate types in Cargo.toml.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
prefix="${1:-/usr/local}"
mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac

version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
major="${version%%.*}"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
echo "build-c: libfgbi.a" >&2
cargo rustc --quiet --release --lib --features capi --crate-type staticlib \
    -- --print native-static-libs 2>"$log" || { cat "$log" >&2; exit 1; }
# the system libraries a static link needs besides libfgbi.a (Rust's std: pthread, dl, m, ...)
static_libs="$(sed -n 's/.*native-static-libs: //p' "$log" | tail -n1)"
cp "$target/release/libfgbi.a" "$log.a"

echo "build-c: libfgbi.so (soname libfgbi.so.$major)" >&2
cargo rustc --quiet --release --lib --features capi --crate-type cdylib \
    -- -C "link-arg=-Wl,-soname,libfgbi.so.$major"

install -d "$prefix/lib" "$prefix/include" "$prefix/lib/pkgconfig"
install -m 644 "$log.a" "$prefix/lib/libfgbi.a"
rm -f "$log.a"
install -m 755 "$target/release/libfgbi.so" "$prefix/lib/libfgbi.so.$version"
ln -sf "libfgbi.so.$version" "$prefix/lib/libfgbi.so.$major"
ln -sf "libfgbi.so.$major" "$prefix/lib/libfgbi.so"
install -m 644 include/libfgbi.h "$prefix/include/libfgbi.h"
cat >"$prefix/lib/pkgconfig/fgbi.pc" <<PC
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: fgbi
Description: Fine-grained block identification: compact frames of dirty memory pages for VM live migration and checkpoint replication
Version: $version
Libs: -L\${libdir} -lfgbi
Libs.private: $static_libs
Cflags: -I\${includedir}
PC
echo "build-c: installed libfgbi $version into $prefix" >&2
