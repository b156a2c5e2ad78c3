#!/usr/bin/env bash
# CI step (.ci/run): builds or reuses the patched QEMU (cached under ~/.cache/fgbi-qemu, see
# build.sh), then one short fgbi-xbzrle migration of a 128 MiB guest at 32 MiB/s (several
# rounds, about half a minute) to Debian's unmodified QEMU 10.0; fails unless the RAM files are
# identical and libfgbi's encoder sent XBZRLE pages.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
t0=$SECONDS
# a from-scratch build takes about 25 min on the 2-core machine; a cached one seconds
timeout 3000 "$here/build.sh"
echo "qemu ci: build.sh took $((SECONDS - t0)) s"
t1=$SECONDS
timeout 900 "$here/migrate.sh" --mode fgbi-xbzrle --json --runs 1 --bandwidth 32M
echo "qemu ci: the migration took $((SECONDS - t1)) s"
