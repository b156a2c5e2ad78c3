#!/usr/bin/env bash
# Builds the migration guest: Debian's kernel (linux-image-amd64) and a busybox initramfs whose
# /init (guest/init) runs guest/workload.c (compiled static) and a page-cache churn job.
# Usage: guest/build-guest.sh   prints the guest's directory (vmlinuz, initramfs.cpio.gz).
# Reused while init, workload.c, busybox and the kernel are unchanged.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FGBI_LOG_NAME=build-guest.sh
# shellcheck source=../lib.sh
. "$here/../lib.sh"

fgbi_need_pkgs "the guest: Debian's kernel, a static busybox, a C compiler for the workload" \
    linux-image-amd64 busybox-static build-essential cpio
kernel="$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n1)"
[ -n "$kernel" ] || fgbi_die "no /boot/vmlinuz-*: is linux-image-amd64 installed?"

out="$FGBI_QEMU_CACHE/guest"
key="$({
    sha256sum "$here/init" "$here/workload.c" "$here/build-guest.sh" /bin/busybox "$kernel"
} | sha256sum | cut -c1-64)"
if [ -f "$out/key" ] && [ "$(cat "$out/key")" = "$key" ] && [ -f "$out/initramfs.cpio.gz" ]; then
    echo "$out"
    exit 0
fi

fgbi_log "building the guest in $out (kernel $(basename "$kernel"), busybox initramfs)"
rm -rf "$out"
mkdir -p "$out/root/bin" "$out/root/proc" "$out/root/sys" "$out/root/dev" "$out/root/tmp"
cp /bin/busybox "$out/root/bin/busybox"
install -m 755 "$here/init" "$out/root/init"
gcc -O2 -static -Wall -Wextra -o "$out/root/bin/workload" "$here/workload.c" ||
    fgbi_die "the workload does not compile"
(cd "$out/root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -9 >"$out/initramfs.cpio.gz")
cp "$kernel" "$out/vmlinuz"
rm -rf "$out/root"
echo "$key" >"$out/key"
echo "$out"
