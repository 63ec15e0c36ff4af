#!/bin/sh
# runtime action: CPython from a source tarball, installed for /opt/python/<tag>, the way the
# manylinux images build theirs (--disable-shared, no PGO). The contract is docs/actions.md.
#
#   REFINE_SRC             /src/Python-3.11.2.tgz (Debian's python3.11_3.11.2.orig.tar.gz is
#                          the same file)
#   REFINE_PREFIX          the mount point the runtime will have: /opt/python/cp311-cp311.
#                          CPython bakes it into sysconfig, shebangs and sys.prefix lookups,
#                          so it must be the final path; the tree is staged with DESTDIR and
#                          the prefix's contents are moved into /out.
#   REFINE_CONFIGURE_ARGS  one configure argument per line (the rule's `configure`), e.g.
#                          --disable-shared / --with-ensurepip=install
#   REFINE_PACKS           colon-separated pack roots; a libffi pack is linked statically into
#                          _ctypes (the runtime then needs no pack at run time)
#   REFINE_JOBS            make -j (default 1)
#   SOURCE_DATE_EPOCH      required (build info date, checked-hash .pyc files)
# Output: /out = the prefix's contents (bin/python3, lib/python3.X, include/ ...).
set -euf
umask 022
export LC_ALL=C TZ=UTC
ME=runtime.sh   # for die and pick_src (recipes/lib.sh)
# shellcheck source=SCRIPTDIR/../lib.sh
. "$REFINE_LIB"
: "${REFINE_SRC:?REFINE_SRC (the CPython tarball) is not set}"
: "${REFINE_PREFIX:?REFINE_PREFIX (/opt/python/<tag>) is not set}"
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH is not set}"
OUT=${REFINE_OUT:-/out}
JOBS=${REFINE_JOBS:-1}
SRC_FILE=$(pick_src 'Python-*.t*z' 'python3.*_*.orig.tar.*')
case $REFINE_PREFIX in /opt/python/*) ;; *) die "REFINE_PREFIX must be /opt/python/<tag>" ;; esac

W=/work/cpython
rm -rf "$W"
mkdir -p "$W/src" "$W/dest"
tar -xf "$SRC_FILE" -C "$W/src"
set +f
set -- "$W"/src/*
set -f
[ $# -eq 1 ] && [ -x "$1/configure" ] || die "$SRC_FILE is not a CPython source tarball"
S=$1

# packs: headers and libraries through the usual variables; libffi statically
IFS=': '   # REFINE_PACKS: colon- or blank-separated (paths hold neither)
for p in ${REFINE_PACKS:-}; do
    [ -d "$p" ] || die "pack $p is not mounted"
    CPPFLAGS="${CPPFLAGS:+$CPPFLAGS }-I$p/include"
    LDFLAGS="${LDFLAGS:+$LDFLAGS }-L$p/lib"
    case ":${PKG_CONFIG_PATH:-}:" in *":$p/lib/pkgconfig:"*) ;; *)
        PKG_CONFIG_PATH="${PKG_CONFIG_PATH:+$PKG_CONFIG_PATH:}$p/lib/pkgconfig" ;; esac
    if [ -f "$p/lib/libffi.a" ]; then
        # Static libffi, so the runtime needs no pack (and not the base's libffi8) at run
        # time. 3.12+ take LIBFFI_LIBS from configure; 3.11's setup.py links `-lffi` from
        # the -L dirs, so the first -L dir holds libffi.a alone (ld takes .a when no .so is
        # in the same dir).
        mkdir -p "$W/static"
        ln -sf "$p/lib/libffi.a" "$W/static/libffi.a"
        export LIBFFI_CFLAGS="-I$p/include" LIBFFI_LIBS="$p/lib/libffi.a"
        STATIC_FFI=1
    fi
done
unset IFS
[ -z "${STATIC_FFI:-}" ] || LDFLAGS="-L$W/static${LDFLAGS:+ $LDFLAGS}"
export CPPFLAGS="-ffile-prefix-map=$S=.${CPPFLAGS:+ $CPPFLAGS}" LDFLAGS="${LDFLAGS:-}"
export PKG_CONFIG_PATH="${PKG_CONFIG_PATH:-}"

set --
if [ -n "${REFINE_CONFIGURE_ARGS:-}" ]; then
    IFS='
'
    for a in $REFINE_CONFIGURE_ARGS; do [ -n "$a" ] && set -- "$@" "$a"; done
    unset IFS
fi

cd "$S"
./configure --prefix="$REFINE_PREFIX" --build="$(gcc -dumpmachine)" "$@"
make -j"$JOBS"
make install DESTDIR="$W/dest"

T=$W/dest$REFINE_PREFIX
[ -d "$T/bin" ] || die "make install left nothing under $REFINE_PREFIX"
# the interpreter must start from where it lies (it finds its prefix from its own path)
set +f
set -- "$T"/bin/python3.[0-9]*
set -f
PY=$1
[ -x "$PY" ] || die "no bin/python3.X installed"
"$PY" - <<'EOF'
import sys, sysconfig, importlib
print("runtime.sh:", sys.version.replace("\n", " "), sys.platform, sys.byteorder)
missing = []
for m in ("zlib", "_ctypes", "_ssl", "_hashlib", "_bz2", "_lzma", "_sqlite3", "readline",
          "_uuid", "_decimal", "pyexpat", "ensurepip", "venv"):
    try:
        importlib.import_module(m)
    except ImportError:
        missing.append(m)
print("runtime.sh: modules not built:", " ".join(missing) or "none")
for need in ("zlib", "pyexpat", "venv"):
    if need in missing:
        sys.exit("runtime.sh: %s is required (pip and build need it)" % need)
EOF
if [ -n "${STATIC_FFI:-}" ]; then
    "$PY" -c 'import ctypes; ctypes.CDLL(None).getpid' || die "_ctypes (libffi) does not work"
    set +f
    for so in "$T"/lib/python3*/lib-dynload/_ctypes.*so; do
        if grep -q 'libffi\.so' "$so"; then die "${so##*/} links libffi dynamically"; fi
    done
    set -f
fi
mkdir -p "$OUT"
cp -a "$T"/. "$OUT"/
echo "runtime.sh: installed $("$PY" -c 'import sys; print(sys.version.split()[0])') for $REFINE_PREFIX into $OUT"
