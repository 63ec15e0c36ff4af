#!/usr/bin/env bash
# What building for s390x on this host needs, and nothing else: debootstrap (bases are
# bootstrapped), gpgv and debian-archive-keyring (`refine lock` verifies the suite's release with
# them; docs/locks.md), qemu-user-static registered in binfmt_misc with the F flag (s390x programs run
# in the sandbox without qemu inside the root). Idempotent; as root. Used by scripts/main.sh and
# by the tests' set-up (.ci/setup.d/sandbox.sh).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
log() { echo "setup/emulation: $*" >&2; }

missing=()
for pkg in qemu-user-static binfmt-support debootstrap gpgv debian-archive-keyring; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# qemu-user-static registers qemu-s390x with the F flag, but only where binfmt_misc is mounted
# and the entry is enabled.
if [[ ! -e /proc/sys/fs/binfmt_misc/status ]]; then
    log "mounting binfmt_misc"
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-s390x ]] || ! grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-s390x; then
    log "enabling qemu-s390x in binfmt_misc"
    update-binfmts --enable qemu-s390x
fi
if ! grep -qE '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-s390x; then
    log "/proc/sys/fs/binfmt_misc/qemu-s390x lacks the F flag; reinstall qemu-user-static"
    exit 1
fi
