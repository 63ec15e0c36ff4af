#!/bin/sh
# recipe for the pack lapack (3.11.0): lib/liblapack_pic.a, reference LAPACK (every routine,
# the deprecated ones included) compiled position-independent, as Debian's liblapack-pic
# ships it. Its one use is to be merged into OpenBLAS (recipes/openblas.sh), which is how
# Debian gives its OpenBLAS a LAPACK: the "+ds" OpenBLAS tarball has lapack-netlib/ stripped.
# The action contract is docs/actions.md.
#
# Inputs:  REFINE_SRC     /src/lapack_3.11.0.orig.tar.gz (Debian's orig = upstream release)
#          REFINE_PREFIX  where to install (default /out: the pack's root)
#          REFINE_JOBS    make -j (default 1)
#          FC, CC         default gfortran, gcc
#
# The Makefile build of SRC/ only (no BLAS: OpenBLAS brings it; no tests, no LAPACKE). The
# deprecated routines (SRC/DEPRECATED, BUILD_DEPRECATED) are in: OpenBLAS exports them.
set -euf
umask 022
export LC_ALL=C TZ=UTC
ME=lapack.sh   # for die and pick_src (recipes/lib.sh)
# shellcheck source=SCRIPTDIR/lib.sh
. "$REFINE_LIB"

: "${REFINE_SRC:?REFINE_SRC (the LAPACK tarball) is not set}"
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH is not set}"
PREFIX=${REFINE_PREFIX:-/out}
JOBS=${REFINE_JOBS:-1}
SRC_FILE=$(pick_src 'lapack_*.orig.tar.*' 'lapack-*.tar.*' 'v3.*.tar.gz')

L=/work/lapack
rm -rf "$L"
mkdir -p "$L"
tar -xf "$SRC_FILE" -C "$L"
S=$(find "$L" -mindepth 1 -maxdepth 1 -type d | head -n1)
[ -f "$S/SRC/Makefile" ] || die "$SRC_FILE is not a LAPACK source tree"
MAP="-ffile-prefix-map=$S=lapack"
cat > "$S/make.inc" <<EOF
SHELL = /bin/sh
CC = ${CC:-gcc}
CFLAGS = -O2 -fPIC $MAP
FC = ${FC:-gfortran}
FFLAGS = -O2 -frecursive -fPIC $MAP
FFLAGS_DRV = \$(FFLAGS)
FFLAGS_NOOPT = -O0 -frecursive -fPIC $MAP
LDFLAGS =
AR = ar
ARFLAGS = crD
RANLIB = ranlib -D
TIMER = INT_ETIME
BUILD_DEPRECATED = Yes
LAPACKLIB = \$(TOPSRCDIR)/liblapack_pic.a
EOF
make -j"$JOBS" -C "$S/SRC"
[ -f "$S/liblapack_pic.a" ] || die "make left no $S/liblapack_pic.a"
nm "$S/liblapack_pic.a" 2>/dev/null | grep -q ' T dgegs_$' || die "liblapack_pic.a lacks the deprecated routines (dgegs_)"
mkdir -p "$PREFIX/lib"
cp "$S/liblapack_pic.a" "$PREFIX/lib/"
chmod 0644 "$PREFIX/lib/liblapack_pic.a"
echo "lapack.sh: installed $(ar t "$PREFIX/lib/liblapack_pic.a" | wc -l) objects into $PREFIX/lib/liblapack_pic.a"
