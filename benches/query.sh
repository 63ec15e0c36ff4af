#!/usr/bin/env bash
# Times `refine query //...` (load, resolve, print) against `ninja -n` on the same graph,
# at 10,000 and 100,000 rules, with the rules cache warm (the usual case: rule files that did
# not change are not parsed again) and off, and reports refine's peak memory.
# Needs: hyperfine, ninja-build, python3. Usage: benches/query.sh [SIZES...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
refine="$root/target/release/refine"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for n in "${@:-10000 100000}"; do
  for size in $n; do
    dir="$work/ws$size"
    python3 "$here/gen_workspace.py" "$size" "$dir"
    echo "== $size rules"
    hyperfine --warmup 2 --min-runs 5 --export-json "$work/q$size.json" \
      -n refine "$refine -C $dir query //... > /dev/null" \
      -n refine-cold "REFINE_RULES_CACHE=off $refine -C $dir query //... > /dev/null" \
      -n ninja "ninja -C $dir -n > /dev/null"
    python3 - "$work/q$size.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
print(f"ratio refine/ninja (median): {r['refine'] / r['ninja']:.2f}x (rules cache warm), {r['refine-cold'] / r['ninja']:.2f}x (cache off: every file parsed)")
PY
    rss=$( { /usr/bin/time -f '%M' "$refine" -C "$dir" query //... > /dev/null; } 2>&1 | tail -1)
    echo "refine peak RSS: $((rss / 1024)) MiB"
  done
done
