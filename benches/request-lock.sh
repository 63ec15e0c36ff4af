#!/usr/bin/env bash
# Locking a build request (docs/requests.md) against uv alone on the same input: `refine
# request lock demo` (every platform and Python version of requests/demo.kdl, plus each
# sdist's build requirements pinned for the target) against `uv pip compile` of the same
# requirements file for the same targets, one after the other, with the same pinned uv.
# Both warm: uv's cache and refine's store hold the index pages and sdists after the first
# run. The issue's aim: at most 1.5x (refine adds the build-requirement step).
# Needs: hyperfine, network to the package index. Usage: benches/request-lock.sh [REQUEST]
#   REFINE  the refine binary to time (default: target/release/refine, built here)
#   FRESH=1 also times a lock with no lock to replace (the first lock of a request; a lock
#           that replaces one asks its build-requirement questions ahead, docs/requests.md)
#   STORE   the store to lock with (default: a new one). A lock asks each sdist's backend in
#           the sandbox (docs/requests.md), which needs the bases, runtimes and packs built:
#           in a new store the first lock builds them all (tens of minutes for s390x). Give
#           a store that holds them (a test run's, say) to time the locks after that first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
request=${1:-demo}
if [[ -z ${REFINE:-} ]]; then
  cargo build --release --quiet --manifest-path "$root/Cargo.toml"
fi
refine=${REFINE:-"${CARGO_TARGET_DIR:-$root/target}/release/refine"}
work=$(mktemp -d /var/tmp/refine-bench-lock.XXXXXX)
trap 'rm -rf "$work"' EXIT
ws="$work/ws"
mkdir -p "$ws"
cp -a "$root"/{workspace.kdl,rules,catalog,recipes,requests,examples} "$ws"/
store=${STORE:-"$work/store"}
# The first lock fetches uv and the sdists into the store, and fills uv's cache.
"$refine" -C "$ws" --store "$store" request lock "$request" > /dev/null
uv=$(ls "$store"/tmp/uv-*/uv)
# uv alone: the same requirements file for each platform and Python version the request
# resolves (read back from the lock), with the same flags refine passes.
uv_cmds=()
while read -r py platform; do
  target=$(sed -n "s/^platform \"$platform\" arch=\"\([^\"]*\)\" policy=\"\([^\"]*\)\".*/\1-\2/p" "$ws/workspace.kdl")
  # The interpreter uv needs, found once as refine finds it, so that neither side pays for
  # finding it on every run.
  interpreter=$("$uv" python find --no-config --no-python-downloads "$py")
  uv_cmds+=("$uv pip compile --no-config -q --no-header $ws/requests/$request.txt --format pylock.toml --python-platform $target --python-version $py --python $interpreter -o $work/out/pylock.toml")
done < <(sed -n 's/^resolution python="\([^"]*\)" platform=\([^ ]*\) {/\1 \2/p' "$ws/requests/$request.lock" | tr -d '"')
mkdir -p "$work/out"
uv_all=$(printf '%s && ' "${uv_cmds[@]}")
uv_all=${uv_all% && }
echo "== $request: ${#uv_cmds[@]} resolution(s)"
fresh=()
if [[ -n ${FRESH:-} ]]; then
  fresh=(-n refine-fresh "rm -f $ws/requests/$request.lock && $refine -C $ws --store $store request lock $request > /dev/null 2>&1")
fi
hyperfine --warmup 2 --min-runs 10 --export-json "$work/lock.json" \
  -n refine "$refine -C $ws --store $store request lock $request > /dev/null 2>&1" \
  "${fresh[@]}" \
  -n uv "bash -c '$uv_all'"
python3 - "$work/lock.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
m = {x["command"]: x["min"] for x in json.load(open(sys.argv[1]))["results"]}
print(f"lock ratio refine/uv: {r['refine'] / r['uv']:.2f}x (median), {m['refine'] / m['uv']:.2f}x (fastest runs: a run without the network's occasional ~5 s stall)")
if "refine-fresh" in r:
    print(f"first lock (none to replace) refine/uv: {r['refine-fresh'] / r['uv']:.2f}x (median), {m['refine-fresh'] / m['uv']:.2f}x (fastest)")
PY
