#!/bin/sh
# recipe for the pack libyaml (0.2.5): lib/libyaml-0.so.2.0.9 (+ links), lib/libyaml.a,
# include/yaml.h, lib/pkgconfig/yaml-0.1.pc. The action contract is docs/actions.md.
#
# Inputs:  REFINE_SRC     /src/libyaml_0.2.5.orig.tar.gz (Debian's orig = upstream release)
#          REFINE_PREFIX  where to install (default /out: the pack's root)
#          REFINE_JOBS    unused (eight C files); CC, CFLAGS, LDFLAGS, AR may come from the rule
#
# Why no ./configure: the upstream tarball carries configure.ac but no generated configure
# script (Debian runs dh-autoreconf), and the base has neither autotools nor cmake. Adding
# them to the base would change its key for every pack; and libyaml is eight C files with one
# generated header, so it is compiled here directly, with the library names, soname and
# pkg-config file that `configure && make install` makes (libtool: -release 0
# -version-info 2:9:0). No configure also means no exec storm under qemu.
set -euf
umask 022
export LC_ALL=C TZ=UTC
ME=libyaml.sh   # for die and pick_src (recipes/lib.sh)
# shellcheck source=SCRIPTDIR/lib.sh
. "$REFINE_LIB"

: "${REFINE_SRC:?REFINE_SRC (the libyaml tarball) is not set}"
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH is not set}"
PREFIX=${REFINE_PREFIX:-/out}
CC=${CC:-gcc}
AR=${AR:-ar}
CFLAGS=${CFLAGS:--O2}
LDFLAGS=${LDFLAGS:-}
VERSION=0.2.5
SONAME=libyaml-0.so.2
REAL=libyaml-0.so.2.0.9
SRC_FILE=$(pick_src 'libyaml_*.orig.tar.*' 'yaml-*.tar.gz' 'libyaml-*.tar.gz')

B=/work/libyaml
rm -rf "$B"
mkdir -p "$B/obj"
tar -xzf "$SRC_FILE" -C "$B"
S=$B/yaml-$VERSION
[ -d "$S" ] || S=$B/libyaml-$VERSION
[ -f "$S/src/api.c" ] || { echo "libyaml.sh: no src/api.c in $SRC_FILE" >&2; exit 1; }

# the header configure would write (yaml_private.h includes it unconditionally)
cat > "$B/obj/config.h" <<EOF
#define YAML_VERSION_MAJOR 0
#define YAML_VERSION_MINOR 2
#define YAML_VERSION_PATCH 5
#define YAML_VERSION_STRING "$VERSION"
EOF

# Fixed file order; build paths mapped away so objects do not depend on where /work is.
for f in api reader scanner parser loader writer emitter dumper; do
    # shellcheck disable=SC2086 # CFLAGS is a list of words
    $CC $CFLAGS -fPIC -ffile-prefix-map="$B"=. -DHAVE_CONFIG_H -DYAML_DECLARE_EXPORT \
        -I"$B/obj" -I"$S/include" -c "$S/src/$f.c" -o "$B/obj/$f.o"
done
OBJS="$B/obj/api.o $B/obj/reader.o $B/obj/scanner.o $B/obj/parser.o $B/obj/loader.o $B/obj/writer.o $B/obj/emitter.o $B/obj/dumper.o"

mkdir -p "$PREFIX/lib/pkgconfig" "$PREFIX/include"
# shellcheck disable=SC2086
$CC -shared -Wl,-soname,$SONAME -Wl,--no-undefined $LDFLAGS -o "$PREFIX/lib/$REAL" $OBJS
ln -sf "$REAL" "$PREFIX/lib/$SONAME"
ln -sf "$REAL" "$PREFIX/lib/libyaml.so"
rm -f "$PREFIX/lib/libyaml.a"
# shellcheck disable=SC2086
$AR rcD "$PREFIX/lib/libyaml.a" $OBJS     # D: zero mtimes/uids, deterministic archive
cp "$S/include/yaml.h" "$PREFIX/include/yaml.h"
chmod 0644 "$PREFIX/include/yaml.h" "$PREFIX/lib/libyaml.a"

# Relocatable: the pack is mounted at /opt/packs/libyaml/<digest>, unknown at build time.
cat > "$PREFIX/lib/pkgconfig/yaml-0.1.pc" <<'EOF'
prefix=${pcfiledir}/../..
exec_prefix=${prefix}
includedir=${prefix}/include
libdir=${exec_prefix}/lib

Name: LibYAML
Description: Library to parse and emit YAML
Version: 0.2.5
Cflags: -I${includedir}
Libs: -L${libdir} -lyaml
EOF

# sanity: the outputs the pack promises
for f in lib/$REAL lib/$SONAME lib/libyaml.so lib/libyaml.a include/yaml.h lib/pkgconfig/yaml-0.1.pc; do
    [ -e "$PREFIX/$f" ] || { echo "libyaml.sh: $PREFIX/$f is missing" >&2; exit 1; }
done
echo "libyaml.sh: installed libyaml $VERSION into $PREFIX"
