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
ME=smoke.sh   # for die and pick_src (recipes/lib.sh)
# shellcheck source=SCRIPTDIR/../lib.sh
. "$REFINE_LIB"
: "${REFINE_SRC:?REFINE_SRC (the wheel) is not set}"
: "${REFINE_PYTHON:?REFINE_PYTHON is not set}"
: "${REFINE_SMOKE:?REFINE_SMOKE (the test) is not set}"
OUT=${REFINE_OUT:-/out}
SRC_FILE=$(pick_src '*.whl')
export PIP_NO_INDEX=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
export PIP_CONFIG_FILE=/dev/null PYTHONNOUSERSITE=1
unset LD_LIBRARY_PATH PYTHONPATH

W=/work/smoke
rm -rf "$W"
mkdir -p "$W/run"
tool_venv "$W/venv"
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
