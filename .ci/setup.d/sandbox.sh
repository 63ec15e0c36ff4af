#!/usr/bin/env bash
# Installs what the sandbox tests (tests/it/sandbox.rs, sandbox/) and benches/sandbox.sh need on a
# fresh Debian bookworm machine, as root. Idempotent: a second run only checks.
#
#   REFINE_TEST_S390X_ROOT     an s390x root of a few Debian packages (see below)
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

# The s390x .debs of packages `$2…` downloaded into folder `$1`: the architecture added and
# the package lists updated first, once per run.
s390x_debs() {
    local dir=$1
    shift
    if ! dpkg --print-foreign-architectures | grep -qx s390x; then
        dpkg --add-architecture s390x
        updated=0
    fi
    ((updated)) || { apt-get update -q; updated=1; }
    mkdir -p "$dir"
    chmod 0755 "$dir" # apt fetches as `_apt`
    (cd "$dir" && apt-get download -q "${@/%/:s390x}")
}

# busybox-static:s390x cannot be co-installed with the host's busybox-static (same path, not
# Multi-Arch: same), so its binary is extracted from the .deb.
if [[ ! -x $s390x_busybox ]]; then
    work=$(mktemp -d)
    s390x_debs "$work" busybox-static
    dpkg-deb -x "$work"/busybox-static_*_s390x.deb "$work/x"
    mkdir -p "$(dirname "$s390x_busybox")"
    install -m 0755 "$work/x/bin/busybox" "$s390x_busybox.tmp"
    mv "$s390x_busybox.tmp" "$s390x_busybox"
    rm -rf "$work"
    log "extracted $s390x_busybox"
fi

# An s390x root for the dynamically linked test, the ELF fixtures and the bench: Debian
# bookworm's s390x loader, C and C++ runtime libraries, dash and coreutils, unpacked from their
# .debs (what those tests run: `sh`, `uname`, `ls`, `/bin/true`, and libstdc++.so.6 to read).
# Seconds, where a debootstrap under qemu took minutes of both cores beside the tests' build.
# Built beside its final place and renamed, so an interrupted run leaves no half root behind.
root_packages=(libc6 libgcc-s1 libstdc++6 dash coreutils libacl1 libattr1 libgmp10 libselinux1 libpcre2-8-0)
if [[ ! -x $s390x_root/bin/true ]]; then
    partial="$s390x_root.partial"
    rm -rf "$partial"
    log "unpacking ${root_packages[*]} (s390x) into $s390x_root"
    s390x_debs "$partial/debs" "${root_packages[@]}"
    for deb in "$partial"/debs/*.deb; do dpkg-deb -x "$deb" "$partial"; done
    rm -rf "$partial/debs"
    [[ -e $partial/lib/ld64.so.1 && -x $partial/bin/true ]] || {
        log "the unpacked root lacks /lib/ld64.so.1 or /bin/true"
        exit 1
    }
    rm -rf "$s390x_root"
    mv "$partial" "$s390x_root"
fi
log "ready: $s390x_busybox, $s390x_root"
)
