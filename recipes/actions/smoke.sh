#!/bin/sh
# smoke action: install a (repaired) wheel into a clean venv, offline, and run a smoke test.
# The action contract is docs/actions.md.
#
#   REFINE_SRC          /src/<wheel>.whl
#   REFINE_PYTHON       the interpreter the wheel is for
#   REFINE_SMOKE        Python code to run, e.g.
#                       import yaml; assert yaml.load("a: 1", Loader=yaml.CLoader) == {"a": 1}
#   REFINE_WHEELHOUSE   optional: the wheel's runtime dependencies (installed with it)
# Packs are NOT mounted for this action and LD_LIBRARY_PATH is emptied: a repaired wheel must
# carry its libraries. Output: /out/smoke.txt (interpreter, wheel, test, its output).
set -euf
umask 022
export LC_ALL=C.UTF-8 TZ=UTC
: "${REFINE_SRC:?REFINE_SRC (the wheel) is not set}"
: "${REFINE_PYTHON:?REFINE_PYTHON is not set}"
: "${REFINE_SMOKE:?REFINE_SMOKE (the test) is not set}"
OUT=${REFINE_OUT:-/out}
die() { echo "smoke.sh: $*" >&2; exit 1; }
# REFINE_SRC is the input file, or the /src folder holding it (refine's executor passes the
# folder): pick the one file there matching the patterns.
pick_src() {
    if [ -f "$REFINE_SRC" ]; then echo "$REFINE_SRC"; return 0; fi
    [ -d "$REFINE_SRC" ] || { echo "$0: REFINE_SRC=$REFINE_SRC does not exist" >&2; return 1; }
    set +f
    found=''
    for pat in "$@"; do
        for f in "$REFINE_SRC"/$pat; do
            [ -f "$f" ] && found="$found${found:+
}$f"
        done
    done
    set -f
    n=$(printf '%s' "$found" | grep -c . || true)
    [ "$n" -eq 1 ] || { echo "$0: want one of '$*' in $REFINE_SRC, found $n" >&2; return 1; }
    echo "$found"
}
SRC_FILE=$(pick_src '*.whl')
export PIP_NO_INDEX=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
export PIP_CONFIG_FILE=/dev/null PYTHONNOUSERSITE=1
unset LD_LIBRARY_PATH PYTHONPATH

W=/work/smoke
rm -rf "$W"
mkdir -p "$W/run"
"$REFINE_PYTHON" -m venv --without-pip "$W/venv"
if "$REFINE_PYTHON" -m pip --version >/dev/null 2>&1; then
    pipi() { "$REFINE_PYTHON" -m pip --python "$W/venv/bin/python" "$@"; }
else
    "$W/venv/bin/python" -m ensurepip --default-pip >/dev/null || die "$REFINE_PYTHON has neither pip nor ensurepip"
    pipi() { "$W/venv/bin/python" -m pip "$@"; }
fi
if [ -n "${REFINE_WHEELHOUSE:-}" ]; then
    pipi install --quiet --no-index --find-links "$REFINE_WHEELHOUSE" "$SRC_FILE"
else
    pipi install --quiet --no-index --no-deps "$SRC_FILE"
fi
# run from an empty folder, so nothing is imported from a source tree
cd "$W/run"
"$W/venv/bin/python" -c "$REFINE_SMOKE" > "$W/output.txt" 2>&1 || {
    cat "$W/output.txt" >&2; die "the smoke test failed"; }
mkdir -p "$OUT"
{
    echo "python: $("$W/venv/bin/python" -c 'import sys, platform; print(sys.version.split()[0], platform.machine(), sys.byteorder)')"
    echo "wheel: ${SRC_FILE##*/}"
    echo "test: $REFINE_SMOKE"
    echo "output:"
    cat "$W/output.txt"
} > "$OUT/smoke.txt"
cat "$OUT/smoke.txt"
echo "smoke.sh: passed"
