#!/bin/sh
# recipe for the pack libffi (3.4.4): lib/libffi.so.8* , lib/libffi.a (PIC, so that a
# --disable-shared CPython can link it into _ctypes), include/ffi.h + ffitarget.h,
# lib/pkgconfig/libffi.pc. The action contract is docs/actions.md.
#
# Inputs:  REFINE_SRC     /src/libffi_3.4.4.orig.tar.gz (the upstream release, with configure)
#          REFINE_PREFIX  where to install (default /out: the pack's root)
#          REFINE_JOBS    make -j (default 1); CC, CFLAGS, LDFLAGS may come from the rule
set -euf
umask 022
export LC_ALL=C TZ=UTC
ME=libffi.sh   # for die and pick_src (recipes/lib.sh)
# shellcheck source=SCRIPTDIR/lib.sh
. "$REFINE_LIB"

: "${REFINE_SRC:?REFINE_SRC (the libffi tarball) is not set}"
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH is not set}"
PREFIX=${REFINE_PREFIX:-/out}
JOBS=${REFINE_JOBS:-1}
SRC_FILE=$(pick_src 'libffi_*.orig.tar.*' 'libffi-*.tar.gz')

B=/work/libffi
rm -rf "$B"
mkdir -p "$B"
tar -xzf "$SRC_FILE" -C "$B"
S=$(find "$B" -mindepth 1 -maxdepth 1 -type d -name 'libffi-*' | head -n1)
[ -x "$S/configure" ] || { echo "libffi.sh: no configure in $SRC_FILE" >&2; exit 1; }

cd "$S"
export CFLAGS="${CFLAGS:--O2} -ffile-prefix-map=$B=."   # LDFLAGS, if the rule sets it, stays
# --disable-multi-os-directory: lib/, not lib64/ or lib/../lib64 on x86_64.
# --disable-docs: no makeinfo in the base. --with-pic: libffi.a goes into shared objects.
# The build triplet is given explicitly: config.guess under qemu-user works (uname says
# s390x), but naming it makes the recipe independent of how uname is emulated.
./configure \
    --prefix="$PREFIX" --libdir="$PREFIX/lib" --includedir="$PREFIX/include" \
    --build="$(gcc -dumpmachine)" \
    --disable-multi-os-directory --disable-docs --with-pic
make -j"$JOBS"
make install

# libtool archives hard-code the build prefix: a relocatable pack has none
find "$PREFIX/lib" -name "*.la" -delete   # (globs are off: set -f)
rm -rf "$PREFIX/share"          # man pages: not part of the pack
# Relocatable pkg-config file (the pack's mount point is unknown at build time).
pc=$PREFIX/lib/pkgconfig/libffi.pc
sed -e 's|^prefix=.*|prefix=${pcfiledir}/../..|' \
    -e "s|$PREFIX|\${prefix}|g" "$pc" > "$pc.new"
mv "$pc.new" "$pc"
chmod 0644 "$pc"

for f in lib/libffi.so lib/libffi.so.8 lib/libffi.a include/ffi.h include/ffitarget.h lib/pkgconfig/libffi.pc; do
    [ -e "$PREFIX/$f" ] || { echo "libffi.sh: $PREFIX/$f is missing" >&2; exit 1; }
done
if grep -rl "$PREFIX" "$PREFIX/lib/pkgconfig" >/dev/null 2>&1; then
    echo "libffi.sh: the build prefix $PREFIX is left in a .pc file" >&2; exit 1
fi
echo "libffi.sh: installed libffi into $PREFIX"
