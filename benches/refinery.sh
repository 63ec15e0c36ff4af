#!/usr/bin/env bash
# The refinery's overhead (issue 7): `refine build` of one target whose dependencies are cached,
# against the same action run by hand, in the same run: its `replay.sh` from
# `refine build --sandbox-debug` runs the same commands in the same root, with the same
# mounts and environment, through the same sandbox. What is left is refine's own work: plan,
# keys, preparing inputs, checking, packing and storing the artifact with its provenance.
#
# Targets (native): //packs:libyaml-x86_64, //wheels:pyyaml-host-py311,
# //repairs:pyyaml-host-py311. Each timed refine run starts from a hard-linked copy of a store
# holding everything but the target's ref (hyperfine --prepare, not timed).
# Needs: hyperfine, and the refinery's setup (.ci/setup.d/). The first run bootstraps the
# x86_64 base (a minute or two) unless STORE already holds it.
# Usage: benches/refinery.sh [STORE] [RUNS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
work=$(mktemp -d /var/tmp/refine-bench-refinery.XXXXXX)
trap 'rm -rf "$work"' EXIT
# A copy of the binary: rebuilding refine during the run must not change what is timed.
refine="$work/refine"
cp "$root/target/release/refine" "$refine"
store0=${1:-$work/store0}
runs=${2:-3}
cd "$root"
for t in //packs:libyaml-x86_64 //wheels:pyyaml-host-py311 //repairs:pyyaml-host-py311; do
    name=$(echo "${t#//}" | tr ':/' '--')
    # The target and its dependencies in STORE; each run then starts from a hard-linked copy
    # without the target's ref, so that refine builds it (and only it) again.
    "$refine" build "$t" --store "$store0" 2> "$work/deps.log" || { tail "$work/deps.log"; exit 1; }
    # The by-hand side replays the action as it ran in a copy of its own (whose trees stay
    # unpacked); refine's runs each start from a fresh copy (unpacking what they need).
    "$here/store_without.sh" "$refine" "$store0" "$work/s1" "$t"
    "$refine" build "$t" --store "$work/s1" --sandbox-debug "$work/debug-$name" 2> "$work/first.log" \
        || { tail "$work/first.log"; exit 1; }
    fresh="$here/store_without.sh $refine $store0 $work/s $t"
    replay=$(ls "$work/debug-$name"/*/replay.sh)
    # replay.sh empties /work and /out first: do it untimed for both sides.
    fresh="$fresh; find $work/debug-$name/*/work $work/debug-$name/*/out -mindepth 1 -delete"
    hyperfine --runs "$runs" --export-json "$work/$name.json" \
        --prepare "$fresh" \
        -n refine "$refine build $t --store $work/s 2>/dev/null" \
        -n by-hand "sh $replay > /dev/null 2>&1"
    python3 - "$work/$name.json" "$t" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
a, b = r["refine"]["median"], r["by-hand"]["median"]
print(f"{sys.argv[2]}: refine {a:.2f} s, by hand {b:.2f} s (medians): ratio {a / b:.3f}x, overhead {100 * (a / b - 1):+.1f}%")
PY
done
