#!/bin/sh
# recipe for the pack fnorm (examples/floor-fortran/lib): lib/libfnorm.so, a Fortran library
# that needs libgfortran, for the floor checks of docs/toolchains.md.
#
# Inputs:  REFINE_SRC     /src, holding the folder tree0/ (the rule's `source path=`)
#          REFINE_PREFIX  where to install (default /out: the pack's root)
set -euf
umask 022
ME=fnorm.sh   # for die (recipes/lib.sh)
# shellcheck source=SCRIPTDIR/lib.sh
. "$REFINE_LIB"
PREFIX=${REFINE_PREFIX:-/out}
[ -f "$REFINE_SRC/tree0/fnorm.f90" ] || die "no fnorm.f90 in $REFINE_SRC/tree0"
mkdir -p "$PREFIX/lib"
run gfortran -O2 -fPIC -shared -Wl,-soname,libfnorm.so -o "$PREFIX/lib/libfnorm.so" "$REFINE_SRC/tree0/fnorm.f90"
