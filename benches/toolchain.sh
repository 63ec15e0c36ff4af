#!/usr/bin/env bash
# Native compilers in the emulated s390x root (docs/toolchains.md), against the same actions
# fully emulated and against the host natively, in the same run: each pair is the same recipe
# on the `s390x` platform (every compiler under qemu), on `s390x-2_31` (the toolchain's x86_64
# compilers, everything else under qemu) and on `x86_64` (all native). Each timed build starts
# from a hard-linked copy of a store holding everything but the target's ref, so that refine
# builds it, and only it, again; the time is the action's own (`action-finish` seconds).
# Needs: the refinery's setup (.ci/setup.d/ or scripts/setup/emulation.sh). The first run
# bootstraps both bookworm bases and assembles the toolchain unless STORE already holds them.
# Usage: benches/toolchain.sh [STORE] [RUNS] [TARGET...]
#   NATIVE_PLATFORM=s390x-2_17 times that platform's toolchain (zig) in place of s390x-2_31's.
#   SKIP_EMULATED=1 leaves out the emulated side (for the flagship's packs, whose emulated
#   builds take most of an hour each).
#   TARGET: a rule's s390x label, e.g. //packs:libyaml (default: //packs:libyaml and
#   //wheels:pyyaml-debian-py311; the flagship's //packs:lapack and //packs:openblas take
#   half an hour and more each under emulation).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
work=$(mktemp -d /var/tmp/refine-bench-toolchain.XXXXXX)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
refine="$work/refine"
cp "$root/target/release/refine" "$refine"
store0=${1:-$work/store0}
runs=${2:-3}
shift $(( $# > 2 ? 2 : $# ))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(//packs:libyaml //wheels:pyyaml-debian-py311)
cd "$root"

# The variant of an s390x label for another platform: //packs:x → //packs:x-s390x-2_31,
# //wheels:w-py311 → //wheels:w-s390x-2_31-py311.
variant() {
    case $1 in
        *-py3[0-9]*) echo "${1%-py3*}-$2-py3${1##*-py3}" ;;
        *) echo "$1-$2" ;;
    esac
}

# action_seconds TARGET: the median of RUNS rebuilds of TARGET's action alone.
action_seconds() {
    local t=$1
    # A first build that runs the target's action (STORE did not hold it) is the first sample.
    "$refine" build "$t" --store "$store0" -j 1 --events "$work/ev-0.jsonl" 2> "$work/deps.log" \
        || { tail "$work/deps.log" >&2; exit 1; }
    local first=1
    grep -q '"action-finish".*"label":"'"$t"'"' "$work/ev-0.jsonl" 2>/dev/null && first=2 || rm -f "$work/ev-0.jsonl"
    for i in $(seq "$first" "$runs"); do
        "$here/store_without.sh" "$refine" "$store0" "$work/s" "$t"
        "$refine" build "$t" --store "$work/s" -j 1 --events "$work/ev-$i.jsonl" 2> "$work/run.log" \
            || { tail "$work/run.log" >&2; exit 1; }
    done
    python3 - "$t" "$work"/ev-*.jsonl <<'PY'
import json, statistics, sys
label, files = sys.argv[1], sys.argv[2:]
secs = []
for f in files:
    for line in open(f):
        e = json.loads(line)
        if e.get("event") == "action-finish" and e.get("label") == label:
            secs.append(e["seconds"])
assert len(secs) == len(files), (label, secs)
print(statistics.median(secs))
PY
    rm -f "$work"/ev-*.jsonl
}

printf '%-34s %10s %10s %10s %9s %9s\n' target emulated native-cc x86_64 emu/ncc ncc/x86
for t in "${targets[@]}"; do
    if [ -n "${SKIP_EMULATED:-}" ]; then emulated=nan; else emulated=$(action_seconds "$t"); fi
    native_cc=$(action_seconds "$(variant "$t" "${NATIVE_PLATFORM:-s390x-2_31}")")
    host=$(action_seconds "$(variant "$t" x86_64)")
    python3 - "$t" "$emulated" "$native_cc" "$host" <<'PY'
import sys
t, e, n, h = sys.argv[1], *map(float, sys.argv[2:])
print(f"{t:34} {e:9.1f}s {n:9.1f}s {h:9.1f}s {e / n:8.2f}x {n / h:8.2f}x")
PY
done
