#!/usr/bin/env bash
# Live-migrates the test guest (Debian's kernel + a busybox initramfs running guest/workload.c)
# between two QEMU 10.0 processes on this machine, with XBZRLE or multifd, and checks that the
# two RAM files are identical afterwards.
#
# Usage: integration/qemu/migrate.sh --mode MODE [--json] [--runs N] [--bandwidth RATE]
#                                    [--channels N] [--corrupt [AFTER]] [--unaffordable-cache [SIZE]]
#                                    [more: migrate.py --help]
#   stock         Debian's /usr/bin/qemu-system-x86_64 (10.0.x) on both sides, XBZRLE
#   fgbi-xbzrle   the patched QEMU (build.sh: XBZRLE pages encoded by libfgbi) as the source,
#                 Debian's unmodified /usr/bin/qemu-system-x86_64 as the destination
#   multifd-none  Debian's QEMU on both sides, multifd (2 channels), no compression
#   multifd-zstd  Debian's QEMU on both sides, multifd (2 channels), multifd-compression zstd
#   multifd-fgbi  the patched QEMU on both sides, multifd (2 channels), multifd-compression fgbi
#   --json       one JSON object per run on stdout (logs go to stderr)
#   --runs N     N migrations, each with freshly started QEMUs (default 1)
#   --bandwidth RATE   QEMU's max-bandwidth in bytes/s, K/M/G suffixes of 1024 (default 64M,
#                0: no limit)
#   --channels N       multifd-channels (default 2)
#   --corrupt [AFTER]  multifd modes: a relay flips bytes in one multifd packet's payload after
#                AFTER bytes (default 8M) of its channel: that migration must fail with the source
#                guest running; then the same guest migrates to a fresh destination and verifies
#   --unaffordable-cache [SIZE]  multifd-fgbi: the same with an xbzrle-cache-size that libfgbi's
#                encoders cannot allocate (default: over twice the channels times RAM + swap):
#                the migration must fail with libfgbi's out-of-memory reason
# RAM files and logs: /dev/shm/fgbi-qemu/MODE/runN/ (kept until the next invocation of the mode).
# Exit status 0 only when every run completed and verified.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FGBI_LOG_NAME=migrate.sh
# shellcheck source=lib.sh
. "$here/lib.sh"

mode=""
args=("$@")
for ((i = 0; i < $#; i++)); do
    case "${args[$i]}" in
    --mode) mode="${args[$((i + 1))]:-}" ;;
    --mode=*) mode="${args[$i]#--mode=}" ;;
    -h | --help)
        sed -n '2,23p' "$0"
        exit 0
        ;;
    esac
done
modes="stock, fgbi-xbzrle, multifd-none, multifd-zstd or multifd-fgbi"
case "$mode" in
stock | fgbi-xbzrle | multifd-none | multifd-zstd | multifd-fgbi) ;;
"") fgbi_die "--mode is required ($modes)" ;;
*) fgbi_die "unknown mode '$mode' ($modes)" ;;
esac

fgbi_need_stock_qemu
# The destination must be Debian's binary exactly as packaged: dpkg --verify checks its md5sum.
if dpkg --verify qemu-system-x86 2>/dev/null | grep "$STOCK_QEMU\$" >/dev/null; then
    fgbi_die "$STOCK_QEMU differs from the file Debian's qemu-system-x86 package installed"
fi
case "$mode" in
stock | multifd-none | multifd-zstd)
    source_bin="$STOCK_QEMU"
    dest="$STOCK_QEMU"
    ;;
fgbi-xbzrle)
    source_bin="$("$here/build.sh" --print-binary)"
    dest="$STOCK_QEMU"
    ;;
multifd-fgbi)
    # both sides run libfgbi: the patched binary
    source_bin="$("$here/build.sh" --print-binary)"
    dest="$source_bin"
    ;;
esac
guest="$("$here/guest/build-guest.sh")"

exec python3 "$here/migrate.py" --source-binary "$source_bin" --dest-binary "$dest" \
    --kernel "$guest/vmlinuz" --initrd "$guest/initramfs.cpio.gz" "$@"
