#!/usr/bin/env bash
# For benches that time one target's action again: TO becomes a hard-linked copy of the store
# FROM without TARGET's ref, so that a build of TARGET in TO runs its action (and only it).
# The no-op index (refs.idx) goes too, as it would still call TARGET cached (refine removes
# refs only in gc, which rewrites the index first); refine rebuilds it from the refs.
# Usage: benches/store_without.sh REFINE FROM TO TARGET
set -euo pipefail
refine=$1 from=$2 to=$3 target=$4
ref=$("$refine" plan "$target" --store "$from" --output json | python3 -c '
import json, sys
n = [x for x in json.load(sys.stdin) if x["label"] == sys.argv[1]][0]
print("refs/%s/%s/%s" % (n["kind"], n["key"][:2], n["key"]))' "$target")
rm -rf "$to"
cp -al "$from" "$to"
rm -f "$to/$ref" "$to/refs.idx"
