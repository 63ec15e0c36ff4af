#!/usr/bin/env bash
# Per-action cost of the sandbox against its peers, with hyperfine:
#   native: `refine sandbox run --root ROOT -- /bin/true`
#           vs `bwrap --unshare-all --ro-bind ROOT / /bin/true`
#   s390x:  `refine sandbox run --arch s390x --root S390X_ROOT -- /bin/true`
#           vs `qemu-s390x-static -L S390X_ROOT S390X_ROOT/bin/true` (emulation alone)
#   s390x-bwrap: the s390x refine command vs `bwrap --unshare-all --ro-bind S390X_ROOT / /bin/true`
#   native-whole: the native pair again, on the same root plus empty /work and /out, which
#           refine then binds whole instead of building a skeleton around it
#   native-same-mounts: that, against bwrap also making /proc, /dev and tmpfs /tmp /work /out
# Prints refine's time divided by the peer's (below 1: refine is faster).
#
#   REFINE        the refine binary (default: target/release/refine, built here)
#   BENCH_ROOT    the native root (default: a Debian-shaped root made here: the usual top-level
#                 directories and merged-/usr symlinks, with the host's /bin/true and its
#                 libraries copied in)
#   REFINE_TEST_S390X_ROOT  (default /var/cache/refine-tests/s390x-bookworm)
#   BENCH_ROUNDS  rounds (default 6); each round runs hyperfine on both commands, so that load
#                 from elsewhere on the machine hits both sides alike
#   BENCH_RUNS    hyperfine runs per command and round (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z ${REFINE:-} ]]; then
    cargo build --release --quiet
    REFINE=$PWD/target/release/refine
fi
s390x_root=${REFINE_TEST_S390X_ROOT:-/var/cache/refine-tests/s390x-bookworm}
runs=${BENCH_RUNS:-50}
rounds=${BENCH_ROUNDS:-6}
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
    local name=$1 round
    for ((round = 1; round <= rounds; round++)); do
        hyperfine --shell=none --warmup 10 --runs "$runs" --export-csv "$out/$name.$round.csv" \
            -n refine "$2" -n peer "$3" >/dev/null
    done
}

bench native "$REFINE sandbox run --root $root -- /bin/true" \
    "bwrap --unshare-all --ro-bind $root / /bin/true"
# The same root with empty /work and /out: refine binds it whole instead of a skeleton.
whole=$out/whole
mkdir -p "$whole"
cp -a "$root/." "$whole/"
mkdir -p "$whole/work" "$whole/out"
bench native-whole "$REFINE sandbox run --root $whole -- /bin/true" \
    "bwrap --unshare-all --ro-bind $whole / /bin/true"
# For context: bwrap asked for the mounts refine always makes (/proc, /dev, tmpfs /tmp, /work
# and /out); it still skips refine's rlimits, setsid, uid switch and output piping.
bench native-same-mounts "$REFINE sandbox run --root $whole -- /bin/true" \
    "bwrap --unshare-all --ro-bind $whole / --proc /proc --dev /dev --tmpfs /tmp --tmpfs /work --tmpfs /out /bin/true"
bench s390x "$REFINE sandbox run --arch s390x --root $s390x_root -- /bin/true" \
    "qemu-s390x-static -L $s390x_root $s390x_root/bin/true"
# For context: bwrap on the same root, where the kernel starts qemu through binfmt_misc too.
bench s390x-bwrap "$REFINE sandbox run --arch s390x --root $s390x_root -- /bin/true" \
    "bwrap --unshare-all --ro-bind $s390x_root / /bin/true"

# hyperfine's CSV: command,mean,stddev,median,user,system,min,max (seconds). Per round the
# ratio of medians; reported: the median of those ratios, and the ratio of the fastest runs.
report() { # name, peer label
    cat "$out/$1".*.csv | awk -F, -v name="$1" -v peer="$2" '
        $1 == "refine" { r[++n] = $4; if (!rmin || $7 < rmin) rmin = $7; rsum += $4 }
        $1 == "peer"   { p[++m] = $4; if (!pmin || $7 < pmin) pmin = $7; psum += $4 }
        END {
            for (i = 1; i <= n; i++) ratio[i] = r[i] / p[i]
            # insertion sort, for the median of the per-round ratios
            for (i = 2; i <= n; i++) { v = ratio[i]; for (j = i - 1; j >= 1 && ratio[j] > v; j--) ratio[j + 1] = ratio[j]; ratio[j + 1] = v }
            med = (n % 2) ? ratio[(n + 1) / 2] : (ratio[n / 2] + ratio[n / 2 + 1]) / 2
            printf "%s: refine %.2f ms (mean of round medians; min %.2f), %s %.2f ms (min %.2f); " \
                   "ratio refine/peer: median of %d rounds %.2f, of minimums %.2f\n",
                name, rsum / n * 1e3, rmin * 1e3, peer, psum / m * 1e3, pmin * 1e3, n, med, rmin / pmin
        }'
}
report native "bwrap --unshare-all"
report native-whole "bwrap --unshare-all"
report native-same-mounts "bwrap --unshare-all --proc --dev --tmpfs…"
report s390x "qemu-s390x-static -L"
report s390x-bwrap "bwrap --unshare-all"
