#!/usr/bin/env bash
# Signed artifacts (issue 18), each against a peer in the same run:
#  (a) signing and verifying one artifact's provenance (criterion, crates/refine-attest/benches),
#      against hashing a 1 MiB artifact once;
#  (b) the no-op build of N cached nodes in a workspace that trusts keys, built by a builder
#      with a signing key (every artifact signed), against the same graph with neither, and
#      against ninja's no-op on the equivalent build.ninja: local hits must not get slower.
# Needs: hyperfine, ninja-build, busybox-static, python3. Usage: benches/signing.sh [NOOP_N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
noop_n=${1:-10000}

echo "== (a) sign / verify one artifact's provenance"
cargo bench --quiet --manifest-path "$root/Cargo.toml" -p refine-attest --bench attest -- --noplot 2>&1 \
  | grep -E "^attest/|time:|envelope"

cargo build --release --quiet --manifest-path "$root/Cargo.toml"
refine="$root/target/release/refine"
work=$(mktemp -d /var/tmp/refine-bench-signing.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "== (b) no-op build, $noop_n nodes: signed and trusted vs plain vs ninja"
python3 "$here/gen_build.py" noop "$noop_n" "$work/plain"
cp -r "$work/plain" "$work/signed"
"$refine" key generate ci --dir "$work/keys" > "$work/key.txt"
public=$(cat "$work/keys/ci.pub")
printf 'trust {\n    key "ci" "%s"\n}\n' "$public" >> "$work/signed/workspace.kdl"
export REFINE_SIGNING_KEY_FILE="$work/keys/ci.key"
"$refine" -C "$work/signed" --store "$work/signed-store" build //... -j 2 2> "$work/signed.log" \
  || { tail "$work/signed.log"; exit 1; }
signed_lists=$(ls "$work/signed-store/signatures" | wc -l)
"$refine" -C "$work/signed" --store "$work/signed-store" store verify --signatures > /dev/null
unset REFINE_SIGNING_KEY_FILE
"$refine" -C "$work/plain" --store "$work/plain-store" build //... -j 2 2> "$work/plain.log" \
  || { tail "$work/plain.log"; exit 1; }
echo "(b) artifacts signed in the signed store: $signed_lists"
ninja -C "$work/plain" > /dev/null
hyperfine --warmup 2 --min-runs 10 --export-json "$work/b.json" \
  -n signed "REFINE_SIGNING_KEY_FILE=$work/keys/ci.key $refine -C $work/signed --store $work/signed-store build //... 2>/dev/null" \
  -n plain "$refine -C $work/plain --store $work/plain-store build //... 2>/dev/null" \
  -n ninja "ninja -C $work/plain > /dev/null"
python3 - "$work/b.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
print(f"(b) no-op median ratio signed/plain: {r['signed'] / r['plain']:.3f}x; "
      f"signed/ninja: {r['signed'] / r['ninja']:.2f}x; plain/ninja: {r['plain'] / r['ninja']:.2f}x")
PY
