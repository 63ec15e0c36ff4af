#!/usr/bin/env bash
# The main job on a fresh Debian machine: set up, build refine, and work on the refinery's
# own s390x targets with the embedded local store.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
for setup in .ci/setup.d/*.sh; do
  [ -e "$setup" ] || continue
  bash "$setup"
done
cargo build --release --locked
refine="$root/target/release/refine"
target=${1:-//repairs:pyyaml-py311}
echo "== what $target needs"
"$refine" query "deps($target)"
if "$refine" help build >/dev/null 2>&1; then
  "$refine" build "$target" --out "$root/wheels"
  echo "wheels are in $root/wheels"
else
  echo "refine build is not in this version yet (issues 5 and 7); the graph above is what it will build."
fi
