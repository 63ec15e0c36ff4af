#!/bin/sh
# recipe for the pack openblas (0.3.21): lib/libopenblas.so.0 (+ links), lib/libopenblas.a,
# include/{cblas.h,openblas_config.h,f77blas.h,lapack*.h}, lib/pkgconfig/openblas.pc.
# The action contract is docs/actions.md.
#
# Inputs:  REFINE_SRC     /src/openblas_0.3.21+ds.orig.tar.xz, or upstream's OpenBLAS-0.3.21.tar.gz
#          REFINE_PACKS   with the +ds tarball: a pack holding lib/liblapack_pic.a
#          REFINE_PREFIX  where to install (default /out: the pack's root)
#          REFINE_JOBS    make -j (default 1)
#          TARGET         default ZARCH_GENERIC on s390x: under qemu-user /proc/cpuinfo shows
#                         the host's CPU, so OpenBLAS's detection must not be trusted
#          DYNAMIC_ARCH   default 1 (kernels for every z generation, chosen at run time)
#          NO_LAPACK      see below
#
# The Makefile build, not CMake (CMake has no DYNAMIC_ARCH for zarch):
#   make DYNAMIC_ARCH=1 TARGET=ZARCH_GENERIC USE_OPENMP=0 NUM_THREADS=64
#
# LAPACK. Debian's "+ds" orig tarball has lapack-netlib/ and relapack/ removed (Files-Excluded
# in debian/copyright). Debian then takes reference LAPACK as a PIC archive (liblapack-pic),
# deletes from it the routines OpenBLAS implements itself, and adds the rest to libopenblas
# (debian/patches/no-embedded-lapack.patch). This recipe does the same with the pack
# //packs:lapack (recipes/lapack.sh: lib/liblapack_pic.a), found among REFINE_PACKS; with
# upstream's OpenBLAS-*.tar.gz (it carries lapack-netlib/) OpenBLAS's own build is used.
# Without either, it refuses unless the rule says NO_LAPACK=1 (a BLAS-only pack, on purpose):
# numpy (-Dlapack=openblas) needs LAPACK.
set -euf
umask 022
export LC_ALL=C TZ=UTC
ME=openblas.sh   # for die and pick_src (recipes/lib.sh)
# shellcheck source=SCRIPTDIR/lib.sh
. "$REFINE_LIB"

: "${REFINE_SRC:?REFINE_SRC (the OpenBLAS tarball) is not set}"
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH is not set}"
PREFIX=${REFINE_PREFIX:-/out}
JOBS=${REFINE_JOBS:-1}
SRC_FILE=$(pick_src 'openblas_*.orig.tar.*' 'OpenBLAS-*.tar.*')
LAPACK_PIC=''
IFS=': '   # REFINE_PACKS: colon- or blank-separated (paths hold neither)
for p in ${REFINE_PACKS:-}; do
    [ -f "$p/lib/liblapack_pic.a" ] && LAPACK_PIC=$p/lib/liblapack_pic.a
done
unset IFS

case $(uname -m) in
    s390x) : "${TARGET:=ZARCH_GENERIC}" ;;
    x86_64) : "${TARGET:=HASWELL}" ;;       # with DYNAMIC_ARCH=1 only the baseline
    aarch64) : "${TARGET:=ARMV8}" ;;
    *) : "${TARGET:?TARGET must be set for $(uname -m)}" ;;
esac
DYNAMIC_ARCH=${DYNAMIC_ARCH:-1}

B=/work/openblas
rm -rf "$B"
mkdir -p "$B"
# Debian's minbase has no xz(1) (xz-utils is not Priority: required): unpack .xz with
# Python's tarfile (the base's python3 has _lzma) when tar cannot.
if command -v xz >/dev/null 2>&1; then
    tar -xf "$SRC_FILE" -C "$B"
else
    case $SRC_FILE in
        *.xz|*.txz) python3 -m tarfile -e "$SRC_FILE" "$B" ;;
        *) tar -xf "$SRC_FILE" -C "$B" ;;
    esac
fi
S=$(find "$B" -mindepth 1 -maxdepth 1 -type d | head -n1)
[ -f "$S/Makefile.zarch" ] || die "$SRC_FILE is not an OpenBLAS source tree"

if [ -d "$S/lapack-netlib" ]; then
    NO_LAPACK=${NO_LAPACK:-0}
    LAPACK_FROM=openblas
elif [ "${NO_LAPACK:-0}" = 1 ]; then
    echo "openblas.sh: no lapack-netlib/ in the tarball; building BLAS + CBLAS only (NO_LAPACK=1)" >&2
    LAPACK_FROM=none
elif [ -n "$LAPACK_PIC" ]; then
    NO_LAPACK=0
    LAPACK_FROM=reference
else
    die "$SRC_FILE has no lapack-netlib/ (Debian's +ds tarball strips it); add the lapack pack to the rule (packs \"//packs:lapack\"), use upstream's release tarball, or set NO_LAPACK=1 for a BLAS-only pack"
fi

# One set of variables for build and install (install re-reads the configuration).
OPTS="TARGET=$TARGET DYNAMIC_ARCH=$DYNAMIC_ARCH USE_OPENMP=0 USE_THREAD=1 NUM_THREADS=64
NO_AFFINITY=1 NO_WARMUP=1 NO_LAPACK=$NO_LAPACK NO_LAPACKE=1 NO_STATIC=0 MAKE_NB_JOBS=$JOBS
CC=${CC:-gcc} FC=${FC:-gfortran} HOSTCC=${HOSTCC:-gcc}"
[ "$NO_LAPACK" = 1 ] && OPTS="$OPTS NOFORTRAN=1"
MAP="-ffile-prefix-map=$S=."

cd "$S"
# Targets `libs netlib shared` only: the default target also builds and runs the tests, and
# QEMU 7.2 lacks instructions some z kernels use (e.g. lper), so tests fail under emulation.
# MAKE_NB_JOBS: otherwise OpenBLAS adds -j<detected cores> to its sub-makes.
# shellcheck disable=SC2086 # OPTS is a list of words; COMMON_OPT keeps its blank
if [ "$LAPACK_FROM" = reference ]; then
    # Debian's matgen-symbols-not-included.patch and combssq-deprecate.patch: libopenblas
    # then holds neither LAPACK's test-matrix generators (TMGLIB) nor {s,d}combssq (gone in
    # LAPACK 3.10.1), so they are neither exported nor link-tested.
    sed -i -E '/^[[:space:]]+[cdsz](lagge|laghe|lagsy|lahilb|lakf2|laran|large|larnd|laror|larot|latm[1-7]|latme|latmr|latms|latmt|combssq)[[:space:]]*$/d' exports/gensymbol
    make -j"$JOBS" $OPTS COMMON_OPT="-O2 $MAP" FCOMMON_OPT="-O2 -frecursive $MAP" libs
    # Debian's merge: LAPACK's objects minus the ones OpenBLAS implements, into libopenblas.
    mkdir "$S/lapack-netlib"
    (cd "$S/lapack-netlib" && ar -x "$LAPACK_PIC")
    cat >> "$S/interface/Makefile" <<'EOF'

delete-duplicate-lapack-objects:
	cd ../lapack-netlib && rm -f $(SLAPACKOBJS) $(DLAPACKOBJS) $(CLAPACKOBJS) $(ZLAPACKOBJS) lsame.o xerbla.o
EOF
    # shellcheck disable=SC2086
    make -C interface $OPTS delete-duplicate-lapack-objects
    LIBA=$(find "$S" -maxdepth 1 -type f -name 'libopenblas*.a' | head -n1)
    [ -n "$LIBA" ] || die "make libs left no libopenblas*.a in $S"
    # sorted: the archive's member order is part of the pack's bytes
    (cd "$S/lapack-netlib" && LC_ALL=C ls | LC_ALL=C sort | xargs ar -r "$LIBA")
    # shellcheck disable=SC2086
    make $OPTS COMMON_OPT="-O2 $MAP" FCOMMON_OPT="-O2 -frecursive $MAP" shared
else
    # shellcheck disable=SC2086
    make -j"$JOBS" $OPTS COMMON_OPT="-O2 $MAP" FCOMMON_OPT="-O2 -frecursive $MAP" libs netlib shared
fi
# shellcheck disable=SC2086
make $OPTS COMMON_OPT="-O2 $MAP" FCOMMON_OPT="-O2 -frecursive $MAP" PREFIX="$PREFIX" \
    OPENBLAS_INCLUDE_DIR="$PREFIX/include" OPENBLAS_LIBRARY_DIR="$PREFIX/lib" install

# Relocatable: no build prefix in the pack's metadata. The cmake config files name absolute
# paths (relocating them is a cmake-side job); pkg-config is the supported way in.
rm -rf "${PREFIX:?}/lib/cmake" "${PREFIX:?}/bin"
pc=$PREFIX/lib/pkgconfig/openblas.pc
[ -f "$pc" ] || die "$pc is missing"
# OpenBLAS 0.3.21 writes libdir= and includedir= as absolute paths and no prefix= at all.
{
    echo 'prefix=${pcfiledir}/../..'
    sed -e '/^prefix=/d' -e "s|$PREFIX|\${prefix}|g" "$pc"
} > "$pc.new"
mv "$pc.new" "$pc"
chmod 0644 "$pc"
grep -q '^prefix=${pcfiledir}' "$pc" || die "could not make $pc relocatable"

for f in lib/libopenblas.so lib/libopenblas.so.0 lib/libopenblas.a include/cblas.h include/openblas_config.h; do
    [ -e "$PREFIX/$f" ] || die "$PREFIX/$f is missing"
done
if [ "$NO_LAPACK" = 0 ]; then
    nm -D "$PREFIX/lib/libopenblas.so" | grep -q ' T dgesdd_$' || die "libopenblas.so has no LAPACK (dgesdd_)"
fi
echo "openblas.sh: installed OpenBLAS ($TARGET, DYNAMIC_ARCH=$DYNAMIC_ARCH, LAPACK from $LAPACK_FROM) into $PREFIX"
