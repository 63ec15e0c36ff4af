#!/usr/bin/env bash
# Installs what the sandbox tests (tests/it/sandbox.rs, sandbox/) and benches/sandbox.sh need on a
# fresh Debian bookworm machine, as root. Idempotent: a second run only checks.
#
#   REFINE_TEST_S390X_ROOT     an s390x Debian root (debootstrap minbase)
#                              default /var/cache/refine-tests/s390x-bookworm
#   REFINE_TEST_S390X_BUSYBOX  a static s390x busybox binary
#                              default /var/cache/refine-tests/busybox-s390x
#
# .ci/run sources this file, so it must not `exit` on success and must keep the caller's shell
# options sane; it runs in a subshell for that reason.
(
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

s390x_root=${REFINE_TEST_S390X_ROOT:-/var/cache/refine-tests/s390x-bookworm}
s390x_busybox=${REFINE_TEST_S390X_BUSYBOX:-/var/cache/refine-tests/busybox-s390x}

log() { echo "setup.d/sandbox: $*" >&2; }

# The first `URIs:` (deb822) or `deb` line of the host's apt sources: the mirror debootstrap
# uses, so that no registry host name is written here.
apt_mirror() {
    local uri
    uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
    if [[ -z $uri ]]; then
        uri=$(grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | grep -v -- '-security' | awk '{ for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; exit } }' | head -n1 || true)
    fi
    [[ -n $uri ]] || { log "no Debian mirror found in the apt sources"; return 1; }
    echo "$uri"
}

# qemu-user-static in binfmt_misc with the F flag, and debootstrap: as for the main job.
bash "$(dirname "${BASH_SOURCE[0]}")/../../scripts/setup/emulation.sh"

packages=(bubblewrap hyperfine busybox-static)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
updated=0
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -q
    updated=1
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# busybox-static:s390x cannot be co-installed with the host's busybox-static (same path, not
# Multi-Arch: same), so its binary is extracted from the .deb.
if [[ ! -x $s390x_busybox ]]; then
    if ! dpkg --print-foreign-architectures | grep -qx s390x; then
        dpkg --add-architecture s390x
        updated=0
    fi
    ((updated)) || apt-get update -q
    work=$(mktemp -d)
    chmod 0755 "$work" # apt fetches as `_apt`
    (cd "$work" && apt-get download -q busybox-static:s390x)
    dpkg-deb -x "$work"/busybox-static_*_s390x.deb "$work/x"
    mkdir -p "$(dirname "$s390x_busybox")"
    install -m 0755 "$work/x/bin/busybox" "$s390x_busybox.tmp"
    mv "$s390x_busybox.tmp" "$s390x_busybox"
    rm -rf "$work"
    log "extracted $s390x_busybox"
fi

# An s390x Debian root for the dynamically linked test and the bench. Built beside its final
# place and renamed, so an interrupted run leaves no half root behind.
if [[ ! -x $s390x_root/bin/true ]]; then
    mirror=$(apt_mirror)
    partial="$s390x_root.partial"
    rm -rf "$partial"
    mkdir -p "$(dirname "$s390x_root")"
    log "debootstrap --arch=s390x bookworm into $s390x_root (several minutes)"
    debootstrap --arch=s390x --variant=minbase bookworm "$partial" "$mirror" >"$(dirname "$s390x_root")/debootstrap.log" 2>&1 || {
        log "debootstrap failed; see $(dirname "$s390x_root")/debootstrap.log"
        exit 1
    }
    rm -rf "$s390x_root"
    mv "$partial" "$s390x_root"
fi
log "ready: $s390x_busybox, $s390x_root"
)
