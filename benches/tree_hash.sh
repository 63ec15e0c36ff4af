#!/usr/bin/env bash
# Tree hash throughput: `refine store hash DIR` (refine-tree-v1, BLAKE3, rayon) against
# `b3sum` over the same files, in the same hyperfine run, page cache warm.
#
#   benches/tree_hash.sh [SIZE_MIB]       (default 1024)
#
# The tree is made of copies of the Python standard library (/usr/lib/python3.*: a few
# thousand .py files of all sizes, like unpacked sdists), in benches/out/tree (gitignored).
# Prints hyperfine's table and refine's throughput relative to b3sum (aim: >= 0.9).
set -euo pipefail

cd "$(dirname "$0")/.."
size_mib=${1:-1024}
out=benches/out
tree=$out/tree
mkdir -p "$out"

for tool in b3sum hyperfine; do
    command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install $tool (or run .ci/setup.d/store.sh)" >&2; exit 1; }
done

src=$(ls -d /usr/lib/python3.[0-9]* 2>/dev/null | head -n1)
[[ -n $src ]] || { echo "no /usr/lib/python3.* to copy from" >&2; exit 1; }

current_mib() { du -sm --apparent-size "$tree" 2>/dev/null | cut -f1 || echo 0; }
if [[ ! -f $out/tree.done || $(cat "$out/tree.done") != "$size_mib $src" ]]; then
    rm -rf "$tree" "$out/tree.done"
    mkdir -p "$tree"
    i=0
    while (( $(current_mib) < size_mib )); do
        cp -a "$src" "$tree/copy$i"
        i=$((i + 1))
    done
    echo "$size_mib $src" >"$out/tree.done"
fi
files=$(find "$tree" -type f | wc -l)
echo "tree: $tree, $(current_mib) MiB in $files files (copies of $src)"

cargo build --release --quiet
refine=$PWD/target/release/refine

hyperfine --warmup 2 --runs 10 --export-json "$out/tree_hash.json" \
    -n b3sum "find $tree -type f -print0 | xargs -0 b3sum >/dev/null" \
    -n refine "$refine store hash $tree >/dev/null"

python3 - "$out/tree_hash.json" "$(current_mib)" <<'PY'
import json, sys
runs = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
mib = float(sys.argv[2])
for name in ("b3sum", "refine"):
    print(f"{name}: {runs[name]['mean']:.3f} s ± {runs[name]['stddev']:.3f}, {mib / runs[name]['mean']:.0f} MiB/s")
print(f"refine throughput / b3sum throughput = {runs['b3sum']['mean'] / runs['refine']['mean']:.2f}")
PY
