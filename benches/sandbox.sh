#!/usr/bin/env bash
# Per-action cost of the sandbox against its peers, with hyperfine:
#   native: `refine sandbox run --root ROOT -- /bin/true`
#           vs `bwrap --unshare-all --ro-bind ROOT / /bin/true`
#   s390x:  `refine sandbox run --arch s390x --root S390X_ROOT -- /bin/true`
#           vs `qemu-s390x-static -L S390X_ROOT S390X_ROOT/bin/true` (emulation alone)
# Prints refine's time divided by the peer's (below 1: refine is faster).
#
#   REFINE        the refine binary (default: target/release/refine, built here)
#   BENCH_ROOT    the native root (default: a Debian-shaped root made here: the usual top-level
#                 directories and merged-/usr symlinks, with the host's /bin/true and its
#                 libraries copied in)
#   REFINE_TEST_S390X_ROOT  (default /var/cache/refine-tests/s390x-bookworm)
#   BENCH_RUNS    hyperfine runs per command (default 300)
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z ${REFINE:-} ]]; then
    cargo build --release --quiet --bin refine
    REFINE=$PWD/target/release/refine
fi
s390x_root=${REFINE_TEST_S390X_ROOT:-/var/cache/refine-tests/s390x-bookworm}
runs=${BENCH_RUNS:-300}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

if [[ -n ${BENCH_ROOT:-} ]]; then
    root=$BENCH_ROOT
else
    root=$out/root
    mkdir -p "$root/usr/bin" "$root/usr/lib" "$root/usr/lib64" "$root/usr/sbin"
    for dir in boot dev etc home media mnt opt proc root run srv sys tmp var; do mkdir -p "$root/$dir"; done
    for link in bin lib lib64 sbin; do ln -s "usr/$link" "$root/$link"; done
    cp /usr/bin/true "$root/usr/bin/true"
    for lib in $(ldd /usr/bin/true | grep -o '/[^ ]*'); do
        real=$(readlink -f "$lib")
        dest=$root/usr${lib#/usr}
        mkdir -p "$(dirname "$dest")"
        cp "$real" "$dest"
    done
fi

for tool in hyperfine bwrap qemu-s390x-static; do
    command -v "$tool" >/dev/null || { echo "benches/sandbox.sh: \`$tool\` is missing; run .ci/setup.d/sandbox.sh" >&2; exit 1; }
done

bench() { # name, then the two commands
    local name=$1
    hyperfine --shell=none --warmup 20 --runs "$runs" --export-csv "$out/$name.csv" \
        -n refine "$2" -n peer "$3" >&2
}

bench native "$REFINE sandbox run --root $root -- /bin/true" \
    "bwrap --unshare-all --ro-bind $root / /bin/true"
bench s390x "$REFINE sandbox run --arch s390x --root $s390x_root -- /bin/true" \
    "qemu-s390x-static -L $s390x_root $s390x_root/bin/true"

# hyperfine's CSV: command,mean,stddev,median,user,system,min,max (seconds).
report() { # name, peer label
    awk -F, -v name="$1" -v peer="$2" '
        NR > 1 { mean[$1] = $2; sd[$1] = $3; median[$1] = $4 }
        END {
            printf "%s: refine %.2f ms ± %.2f, %s %.2f ms ± %.2f, ratio refine/peer %.2f (medians %.2f)\n",
                name, mean["refine"] * 1e3, sd["refine"] * 1e3, peer, mean["peer"] * 1e3, sd["peer"] * 1e3,
                mean["refine"] / mean["peer"], median["refine"] / median["peer"]
        }' "$out/$1.csv"
}
report native "bwrap --unshare-all"
report s390x "qemu-s390x-static -L"
