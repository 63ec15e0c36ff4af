#!/bin/sh
# sandbox-run.sh: a stand-in for refine's sandbox, to prove action scripts by hand.
#
#   sandbox-run.sh -r ROOT -s SRCDIR -o OUTDIR [-w WORKDIR] [-p NAME=DIR]... [-y TAG=DIR]
#                  [-e KEY=VALUE]... [-t SECONDS] SCRIPT
#
# Runs SCRIPT as `/bin/sh -e /src/recipe.sh` (cwd /work, as refine's executor does) in a chroot of ROOT, in fresh mount,
# PID, network, IPC and UTS namespaces (no network: only a downed loopback), following the
# mount layout of docs/actions.md:
#
#   /            tmpfs, read-only at the end; ROOT's top-level entries bound read-only
#   /src         SRCDIR's entries read-only, SCRIPT as /src/recipe.sh, and the repository's
#                recipes/lib.sh as /src/lib.sh (REFINE_LIB, for scripts that source it)
#   /opt/packs/NAME/HEX   each -p DIR read-only; HEX = 16 hex of a digest of DIR's listing
#   /opt/python/TAG       the -y runtime read-only
#   /work /out   WORKDIR (default: a fresh temp dir, removed afterwards) and OUTDIR, writable
#   /tmp         tmpfs; /proc fresh; /dev a tmpfs with null zero full random urandom tty
#
# Environment (engine/src/exec/action.rs base_env): cleared, then PATH (runtime bin, packs'
# bin, then the default), HOME=/work, TMPDIR=/tmp, LANG=C.UTF-8, TZ=UTC, SOURCE_DATE_EPOCH
# (315532800), LD_LIBRARY_PATH, PKG_CONFIG_PATH, REFINE_PACKS (blank-separated) from the
# packs, REFINE_SRC=/src, REFINE_OUT=/out, REFINE_LIB=/src/lib.sh, REFINE_JOBS=1, then every -e (which may override). Needs root on the host (it is not a user
# namespace: refine's sandbox is; this is only the stand-in). Exit status: the script's.
set -eu

if [ "${1:-}" = "--inner" ]; then
    # ---- inside the new namespaces (PID 1) --------------------------------------------------
    R=$SBX_STAGE
    mount --make-rprivate /
    mount -t tmpfs -o mode=0755 refine-root "$R"
    for e in "$SBX_ROOT"/* "$SBX_ROOT"/.[!.]*; do
        [ -e "$e" ] || [ -L "$e" ] || continue
        n=${e##*/}
        case $n in proc|dev|tmp|src|work|out|sys) continue ;; esac
        if [ -L "$e" ]; then
            cp -P "$e" "$R/$n"
        elif [ -d "$e" ]; then
            mkdir "$R/$n"
            mount --rbind "$e" "$R/$n"
            mount -o remount,bind,ro "$R/$n"
        fi
    done
    mkdir -p "$R/proc" "$R/dev" "$R/tmp" "$R/src" "$R/work" "$R/out" "$R/sys"
    mount -t proc proc "$R/proc"
    mount -t tmpfs -o mode=0755,nosuid refine-dev "$R/dev"
    for d in null zero full random urandom tty; do
        touch "$R/dev/$d"
        mount --bind "/dev/$d" "$R/dev/$d"
    done
    ln -s /proc/self/fd "$R/dev/fd"
    mount -t tmpfs -o mode=1777 refine-tmp "$R/tmp"
    # /src: a tmpfs with SRCDIR's entries, the script as recipe.sh and lib.sh, all read-only
    mount -t tmpfs -o mode=0755 refine-src "$R/src"
    for e in "$SBX_SRC"/* "$SBX_SCRIPT" "$SBX_LIB"; do
        [ -e "$e" ] || continue
        n=${e##*/}; [ "$e" = "$SBX_SCRIPT" ] && n=recipe.sh
        if [ -d "$e" ]; then mkdir "$R/src/$n"; else touch "$R/src/$n"; fi
        mount --bind "$e" "$R/src/$n"
        mount -o remount,bind,ro "$R/src/$n"
    done
    mount -o remount,ro "$R/src"
    mount --bind "$SBX_WORK" "$R/work"
    mount --bind "$SBX_OUT" "$R/out"
    # /opt: a tmpfs holding the base's /opt entries, the runtime and the packs
    if [ -n "$SBX_PACKS$SBX_RUNTIME" ]; then
        mount -t tmpfs -o mode=0755 refine-opt "$R/opt"
        for e in "$SBX_ROOT"/opt/*; do
            [ -d "$e" ] || continue
            mkdir "$R/opt/${e##*/}"; mount --rbind "$e" "$R/opt/${e##*/}"
            mount -o remount,bind,ro "$R/opt/${e##*/}"
        done
        IFS='
'
        for m in $SBX_PACKS $SBX_RUNTIME; do
            dst=${m%%=*} src=${m#*=}
            mkdir -p "$R$dst"
            mount --bind "$src" "$R$dst"
            mount -o remount,bind,ro "$R$dst"
        done
        unset IFS
        mount -o remount,ro refine-opt "$R/opt" 2>/dev/null || mount -o remount,ro "$R/opt"
    fi
    mount -o remount,ro "$R"
    ip link set lo up 2>/dev/null || true
    hostname refine-sandbox 2>/dev/null || true
    # env -i, then the contract's variables (SBX_ENV: newline-separated KEY=VALUE)
    set -f
    IFS='
'
    # shellcheck disable=SC2086
    exec env -i $SBX_ENV chroot "$R" /bin/sh -c 'cd /work && exec /bin/sh -e /src/recipe.sh'
fi

usage() { sed -n '2,20p' "$0" >&2; exit 2; }
ROOT='' SRC='' OUT='' WORK='' PACKS='' RUNTIME='' ENVS='' TIMEOUT=14400 RTBIN=''
PACKDIRS='' PCDIRS='' LDDIRS='' PACKBIN=''
while getopts r:s:o:w:p:y:e:t: opt; do
    case $opt in
        r) ROOT=$OPTARG ;;
        s) SRC=$OPTARG ;;
        o) OUT=$OPTARG ;;
        w) WORK=$OPTARG ;;
        p) name=${OPTARG%%=*} dir=$(cd "${OPTARG#*=}" && pwd)
           hex=$(cd "$dir" && find . | LC_ALL=C sort | sha256sum | cut -c1-16)
           mp=/opt/packs/$name/$hex
           PACKS="$PACKS$mp=$dir
"
           PACKDIRS="${PACKDIRS:+$PACKDIRS }$mp"
           PCDIRS="${PCDIRS:+$PCDIRS:}$mp/lib/pkgconfig"
           LDDIRS="${LDDIRS:+$LDDIRS:}$mp/lib" PACKBIN="$PACKBIN$mp/bin:" ;;
        y) tag=${OPTARG%%=*} dir=$(cd "${OPTARG#*=}" && pwd)
           RUNTIME="/opt/python/$tag=$dir"
           RTBIN="/opt/python/$tag/bin:" ;;
        e) ENVS="$ENVS$OPTARG
" ;;
        t) TIMEOUT=$OPTARG ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] && [ -n "$ROOT" ] && [ -n "$SRC" ] && [ -n "$OUT" ] || usage
SCRIPT=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
LIB=$(cd "$(dirname "$0")/../../recipes" && pwd)/lib.sh
ROOT=$(cd "$ROOT" && pwd) SRC=$(cd "$SRC" && pwd)
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
TMPWORK=
if [ -z "$WORK" ]; then WORK=$(mktemp -d /var/tmp/refine-work.XXXXXX); TMPWORK=$WORK; fi
mkdir -p "$WORK"; WORK=$(cd "$WORK" && pwd)
STAGE=$(mktemp -d /tmp/refine-stage.XXXXXX)

BASEENV="PATH=${RTBIN}${PACKBIN}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HOME=/work
TMPDIR=/tmp
LANG=C.UTF-8
TZ=UTC
SOURCE_DATE_EPOCH=315532800
REFINE_SRC=/src
REFINE_OUT=/out
REFINE_LIB=/src/lib.sh
REFINE_JOBS=1
REFINE_PACKS=$PACKDIRS
LD_LIBRARY_PATH=$LDDIRS
PKG_CONFIG_PATH=$PCDIRS
"
start=$(date +%s.%N)
rc=0
SBX_STAGE=$STAGE SBX_ROOT=$ROOT SBX_SRC=$SRC SBX_OUT=$OUT SBX_WORK=$WORK SBX_SCRIPT=$SCRIPT SBX_LIB=$LIB \
SBX_PACKS=$PACKS SBX_RUNTIME=$RUNTIME SBX_ENV="$BASEENV$ENVS" \
    timeout -s KILL "$TIMEOUT" unshare --mount --pid --net --ipc --uts --fork --kill-child \
    /bin/sh "$0" --inner || rc=$?
end=$(date +%s.%N)
rmdir "$STAGE" 2>/dev/null || true
[ -z "$TMPWORK" ] || rm -rf "$TMPWORK"
echo "sandbox-run: $(basename "$SCRIPT") exit $rc, wall $(awk "BEGIN{printf \"%.1f\", $end - $start}") s" >&2
exit $rc
