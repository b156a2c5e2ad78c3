# Shared by build.sh, guest/build-guest.sh and migrate.sh (sourced, not run).
# shellcheck shell=bash

# Where everything that git does not track goes: QEMU's source and build, libfgbi's C library,
# the guest.  Override with FGBI_QEMU_CACHE.
FGBI_QEMU_CACHE="${FGBI_QEMU_CACHE:-$HOME/.cache/fgbi-qemu}"

# The QEMU the integration targets: Debian's 10.0.2 (bookworm-backports, from trixie's 10.0.2).
# The stock binary (/usr/bin/qemu-system-x86_64) and the source we patch are this version.
QEMU_DEB_VERSION="1:10.0.2+ds-2+deb13u1~bpo12+1"
QEMU_UPSTREAM_VERSION="10.0.2"
STOCK_QEMU=/usr/bin/qemu-system-x86_64

fgbi_log() { printf '%s: %s\n' "${FGBI_LOG_NAME:-fgbi-qemu}" "$*" >&2; }
fgbi_die() {
    printf '%s: error: %s\n' "${FGBI_LOG_NAME:-fgbi-qemu}" "$*" >&2
    exit 1
}

# Adds the apt sources this integration needs when they are missing: bookworm-backports (the
# stock QEMU 10.0 binary, meson >= 1.5) and deb-src for bookworm-backports (QEMU's source),
# with the URI and keyring of the machine's existing Debian entries.
fgbi_apt_sources() {
    local f=/etc/apt/sources.list.d/fgbi-qemu.sources
    if apt-cache policy 2>/dev/null | grep 'bookworm-backports/main amd64 Packages' >/dev/null &&
        apt-cache showsrc qemu 2>/dev/null | grep -x "Version: $QEMU_DEB_VERSION" >/dev/null; then
        return 0
    fi
    [ "$(id -u)" = 0 ] || fgbi_die "apt sources for bookworm-backports are missing and we are not root: add them (see $f in integration/qemu/README.md)"
    fgbi_log "installing $f (why: bookworm-backports has Debian's QEMU 10.0 binary and source and meson >= 1.5)"
    cat >"$f" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    apt-get update -q >/dev/null || fgbi_die "apt-get update failed"
}

# Debian's .orig tarball of QEMU $QEMU_UPSTREAM_VERSION, in $FGBI_QEMU_CACHE/src.
FGBI_QEMU_TARBALL="$FGBI_QEMU_CACHE/src/qemu_${QEMU_UPSTREAM_VERSION}+ds.orig.tar.xz"

# fgbi_fetch_qemu_tarball "why": fetches $FGBI_QEMU_TARBALL with apt-get source --tar-only (the
# source package of the stock binary's exact version) when it is missing.
fgbi_fetch_qemu_tarball() {
    [ -f "$FGBI_QEMU_TARBALL" ] && return 0
    fgbi_apt_sources
    fgbi_log "apt-get source --tar-only qemu=$QEMU_DEB_VERSION into $FGBI_QEMU_CACHE/src (why: $1)"
    mkdir -p "$FGBI_QEMU_CACHE/src"
    (cd "$FGBI_QEMU_CACHE/src" && apt-get source -q --download-only --tar-only "qemu=$QEMU_DEB_VERSION" >/dev/null 2>&1) ||
        true
    [ -f "$FGBI_QEMU_TARBALL" ] || fgbi_die "apt-get source did not give $FGBI_QEMU_TARBALL"
}

# fgbi_need_pkgs "why" [-t SUITE] pkg...: installs the packages that are not installed yet, saying
# which and why.
fgbi_need_pkgs() {
    local why="$1"
    shift
    local suite=()
    if [ "${1:-}" = -t ]; then
        suite=(-t "$2")
        shift 2
    fi
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep 'install ok installed' >/dev/null || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || fgbi_die "missing packages ${missing[*]} ($why) and we are not root to install them"
    fgbi_apt_sources
    fgbi_log "apt-get install ${suite[*]} ${missing[*]} (why: $why)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${suite[@]}" "${missing[@]}" >/dev/null ||
        fgbi_die "apt-get install ${missing[*]} failed"
}

# The stock QEMU 10.0.x from bookworm-backports, used as the destination of every mode.
fgbi_need_stock_qemu() {
    fgbi_need_pkgs "Debian's unmodified QEMU 10.0: the stock mode and the destination of fgbi-xbzrle" \
        -t bookworm-backports qemu-system-x86 qemu-system-data
    local v
    v="$(dpkg-query -W -f='${Version}' qemu-system-x86)"
    case "$v" in
    1:10.0.*) ;;
    *) fgbi_die "qemu-system-x86 $v is installed, QEMU 10.0.x is needed: apt-get install -t bookworm-backports qemu-system-x86 (7.2 does not migrate exactly under TCG)" ;;
    esac
}
