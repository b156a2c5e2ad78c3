#!/usr/bin/env bash
# CI step (.ci/run): builds or reuses the patched QEMU (cached under ~/.cache/fgbi-qemu, see
# build.sh), then one short fgbi-xbzrle migration of a 128 MiB guest at 64 MiB/s (several
# rounds, about half a minute with the boot) to Debian's unmodified QEMU 10.0; fails unless the RAM files are
# identical and libfgbi's encoder sent XBZRLE pages.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
t0=$SECONDS
# a from-scratch build takes about 25 min on the 2-core machine; a cached one seconds
timeout 3000 "$here/build.sh"
echo "qemu ci: build.sh took $((SECONDS - t0)) s"
t1=$SECONDS
timeout 900 "$here/migrate.sh" --mode fgbi-xbzrle --json --runs 1 --bandwidth 64M
echo "qemu ci: the migration took $((SECONDS - t1)) s"
# The harness must be able to fail: a stopped guest (one pass, no page sent twice) migrated
# through a relay that flips one bit every 40 MiB must end in a stream error or a RAM difference.
t2=$SECONDS
if timeout 300 "$here/migrate.sh" --mode fgbi-xbzrle --runs 1 --stopped-guest \
    --self-test-corrupt-every 40M >/dev/null 2>/tmp/fgbi-qemu-selftest.log; then
    cat /tmp/fgbi-qemu-selftest.log >&2
    echo "qemu ci: the harness self-test verified a corrupted migration" >&2
    exit 1
fi
grep -E 'RAM files differ|load of migration failed|exited with status' /tmp/fgbi-qemu-selftest.log | head -n 3
echo "qemu ci: the harness self-test failed as it must ($((SECONDS - t2)) s)"
