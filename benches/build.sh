#!/usr/bin/env bash
# Executor benchmarks (issue 5), each against a peer in the same run:
#  (a) no-op build of a 10,000-node graph with everything cached, against ninja's no-op on the
#      equivalent build.ninja; and refine's peak memory;
#  (b) scheduler overhead: 1,000 independent trivial sandboxed actions at -j 2, against the
#      same sandbox runs one by one (hyperfine's mean × 1,000 / 2).
# Needs: hyperfine, ninja-build, busybox-static, python3. Usage: benches/build.sh [NOOP_N] [ACTIONS_N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
refine="$root/target/release/refine"
work=$(mktemp -d /var/tmp/refine-bench-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
noop_n=${1:-10000}
actions_n=${2:-1000}

echo "== (a) no-op build, $noop_n nodes"
python3 "$here/gen_build.py" noop "$noop_n" "$work/noop"
"$refine" -C "$work/noop" --store "$work/noop-store" build //... -j 2 2> "$work/first.log" || { tail "$work/first.log"; exit 1; }
ninja -C "$work/noop" > /dev/null
hyperfine --warmup 2 --min-runs 5 --export-json "$work/a.json" \
  -n refine "$refine -C $work/noop --store $work/noop-store build //... 2>/dev/null" \
  -n ninja "ninja -C $work/noop > /dev/null"
python3 - "$work/a.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
print(f"(a) no-op ratio refine/ninja (median): {r['refine'] / r['ninja']:.2f}x")
PY
rss=$( { /usr/bin/time -f '%M' "$refine" -C "$work/noop" --store "$work/noop-store" build //... > /dev/null 2>"$work/rss"; } 2>&1; tail -1 "$work/rss")
echo "(a) refine no-op peak RSS: $(( $(tail -1 "$work/rss") / 1024 )) MiB"

echo "== (b) $actions_n trivial sandboxed actions at -j 2"
python3 "$here/gen_build.py" actions "$actions_n" "$work/act"
# One action first, so that both sides start from an unpacked root (and the timed build
# runs the other N-1 actions).
"$refine" -C "$work/act" --store "$work/act-store" build //packs:p0 2>/dev/null
tree=$(ls -d "$work"/act-store/trees/*/ | head -1)
mkdir -p "$work/sb-out"
chmod 777 "$work/sb-out"   # actions run as uid 65534: the bind must be writable by it
hyperfine --warmup 3 --min-runs 30 --export-json "$work/b1.json" \
  -n sandbox "$refine sandbox run --root $tree --bind $work/sb-out:/res -- /bin/sh -c 'echo 1 > /res/n'"
start=$(date +%s.%N)
"$refine" -C "$work/act" --store "$work/act-store" build //packs:all -j 2 2> "$work/b.log" || { tail "$work/b.log"; exit 1; }
end=$(date +%s.%N)
python3 - "$work/b1.json" "$start" "$end" "$((actions_n - 1))" <<'PY'
import json, sys
one = json.load(open(sys.argv[1]))["results"][0]["mean"]
total = float(sys.argv[3]) - float(sys.argv[2])
n = int(sys.argv[4])
ideal = one * n / 2
print(f"(b) {n} actions: refine {total:.1f} s; one sandbox run {one*1000:.1f} ms; ideal at -j 2 {ideal:.1f} s; ratio {total / ideal:.2f}x")
PY
