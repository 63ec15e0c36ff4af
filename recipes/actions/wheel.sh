#!/bin/sh
# wheel action: build one wheel from an sdist with a PEP 517 frontend (pypa/build), offline.
# The action contract (mounts, variables, outputs) is docs/actions.md.
#
#   REFINE_SRC              /src/<sdist>.tar.gz (or .zip)
#   REFINE_PYTHON           the interpreter: /opt/python/<tag>/bin/python3 or /usr/bin/python3.11
#   REFINE_WHEELHOUSE       /src/wheelhouse: the pinned wheels (frontend, backend, their deps)
#   REFINE_REQUIRES         what to install from it, pins separated by blanks or newlines:
#                           "build==1.2.2.post1 setuptools==75.8.0 wheel==0.45.1 Cython==3.0.11"
#   REFINE_CONFIG_SETTINGS  optional, one key=value per line: each becomes -Ckey=value
#   REFINE_PACKS            optional, colon-separated pack roots (/opt/packs/<name>/<hex>)
#   REFINE_JOBS             optional, parallel compile jobs (default 1)
#   SOURCE_DATE_EPOCH       required: zip entry times of the wheel
#   REFINE_PROBE            optional: 1 for a probe (refine request lock), which stops before
#                           the build and writes /out/build-requires.txt instead: what the
#                           backend's get_requires_for_build_wheel asks for that the venv
#                           lacks, one requirement per line
# Output: exactly one /out/<name>-<ver>-<tags>.whl (a probe: /out/build-requires.txt)
set -euf
umask 022
export LC_ALL=C.UTF-8 TZ=UTC
ME=wheel.sh   # for die and pick_src (recipes/lib.sh)
# shellcheck source=SCRIPTDIR/../lib.sh
. "$REFINE_LIB"
: "${REFINE_SRC:?REFINE_SRC (the sdist) is not set}"
: "${REFINE_PYTHON:?REFINE_PYTHON is not set}"
: "${REFINE_WHEELHOUSE:?REFINE_WHEELHOUSE is not set}"
: "${REFINE_REQUIRES:?REFINE_REQUIRES (the pinned frontend and backend) is not set}"
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH is not set}"
OUT=${REFINE_OUT:-/out}
SRC_FILE=$(pick_src '*.tar.gz' '*.zip')
[ -x "$REFINE_PYTHON" ] || die "no interpreter at $REFINE_PYTHON"

# pip and Python: no network, no caches or config from anywhere, no bytecode in the tree
export PIP_NO_INDEX=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
export PIP_CONFIG_FILE=/dev/null PYTHONNOUSERSITE=1 PYTHONHASHSEED=0
export MAX_JOBS="${REFINE_JOBS:-1}" CMAKE_BUILD_PARALLEL_LEVEL="${REFINE_JOBS:-1}"

# Packs: make them visible to every kind of build system (setuptools reads CPPFLAGS/LDFLAGS,
# meson and autotools use pkg-config, raw gcc reads CPATH/LIBRARY_PATH).
IFS=': '   # REFINE_PACKS: colon- or blank-separated (paths hold neither)
for p in ${REFINE_PACKS:-}; do
    [ -d "$p" ] || die "pack $p is not mounted"
    # the pack's digest stays out of debug info: /opt/packs/<name>/<hex> -> /opt/packs/<name>
    CPPFLAGS="${CPPFLAGS:+$CPPFLAGS }-I$p/include -ffile-prefix-map=$p=${p%/*}"
    LDFLAGS="${LDFLAGS:+$LDFLAGS }-L$p/lib"
    CPATH="${CPATH:+$CPATH:}$p/include"
    LIBRARY_PATH="${LIBRARY_PATH:+$LIBRARY_PATH:}$p/lib"
    case ":${PKG_CONFIG_PATH:-}:" in *":$p/lib/pkgconfig:"*) ;; *)
        PKG_CONFIG_PATH="${PKG_CONFIG_PATH:+$PKG_CONFIG_PATH:}$p/lib/pkgconfig" ;; esac
    case ":${LD_LIBRARY_PATH:-}:" in *":$p/lib:"*) ;; *)
        LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$p/lib" ;; esac
done
unset IFS
export CPPFLAGS="${CPPFLAGS:-}" LDFLAGS="${LDFLAGS:-}" CPATH="${CPATH:-}"
export LIBRARY_PATH="${LIBRARY_PATH:-}" PKG_CONFIG_PATH="${PKG_CONFIG_PATH:-}"
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"

# 1. the unpacked sdist, at a fixed path; the build path is mapped away in debug info
W=/work/wheel
rm -rf "$W"
mkdir -p "$W/src" "$W/dist"
case $SRC_FILE in
    *.zip) "$REFINE_PYTHON" -m zipfile -e "$SRC_FILE" "$W/src" ;;
    *) tar -xf "$SRC_FILE" -C "$W/src" ;;
esac
set +f
set -- "$W"/src/*
set -f
[ $# -eq 1 ] && [ -d "$1" ] || die "$SRC_FILE does not unpack to one top directory"
TOP=$1
# The build path goes out of debug info and __FILE__ through CPPFLAGS, not CFLAGS:
# setuptools' distutils *replaces* the interpreter's CFLAGS (-O2 -DNDEBUG -fwrapv ...) by
# $CFLAGS when it is set, but appends $CPPFLAGS. Meson and autotools read CPPFLAGS too.
export CPPFLAGS="-ffile-prefix-map=$TOP=.${CPPFLAGS:+ $CPPFLAGS}"

# 2. a venv with the pinned frontend and backend, from the wheelhouse only
tool_venv "$W/venv"
# shellcheck disable=SC2046 # REFINE_REQUIRES is a list of pins
run pipi install --quiet --no-index --find-links "$REFINE_WHEELHOUSE" --only-binary :all: \
    $(echo "$REFINE_REQUIRES" | tr '\n' ' ')
"$W/venv/bin/python" -m build --version >/dev/null || die "build (pypa/build) is not in REFINE_REQUIRES"
# As in an activated venv, its scripts come first on PATH: meson-python runs `ninja` from
# PATH, and build backends call tools (cython, meson) by name.
export PATH="$W/venv/bin:$PATH"

# 3. config settings, one per line
set --
if [ -n "${REFINE_CONFIG_SETTINGS:-}" ]; then
    IFS='
'
    for cs in $REFINE_CONFIG_SETTINGS; do
        [ -n "$cs" ] && set -- "$@" "-C$cs"
    done
    unset IFS
fi

cd "$TOP"
mkdir -p "$OUT"

# 4a. a probe: the backend's dynamic build requirements that the venv does not meet, in the
# same venv, with the same packs, config settings and variables as the build
if [ "${REFINE_PROBE:-}" = 1 ]; then
    run "$W/venv/bin/python" -c '
import sys, build
settings = {}
for a in sys.argv[2:]:  # -Ckey=value, as pypa/build reads them
    key, _, value = a[2:].partition("=")
    settings.setdefault(key, []).append(value)
settings = {k: v[0] if len(v) == 1 else v for k, v in settings.items()}
asked = build.ProjectBuilder(".").get_requires_for_build("wheel", settings or None)
unmet = sorted({r for r in asked if list(build.check_dependency(r))})
with open(sys.argv[1], "w") as out:
    out.write("".join(r + "\n" for r in unmet))
' "$OUT/build-requires.txt" "$@"
    chmod 0644 "$OUT/build-requires.txt"
    echo "wheel.sh: probed, unmet: $(tr '\n' ' ' <"$OUT/build-requires.txt")"
    exit 0
fi

# 4. the build: no isolation (the venv is the isolation), dependencies checked against it
run "$W/venv/bin/python" -m build --wheel --no-isolation --outdir "$W/dist" "$@" .

# 5. exactly one wheel
set +f
set -- "$W"/dist/*.whl
set -f
[ $# -eq 1 ] && [ -f "$1" ] || die "expected one wheel in $W/dist, found: $*"
cp "$1" "$OUT/"
chmod 0644 "$OUT/${1##*/}"
echo "wheel.sh: built ${1##*/}"
