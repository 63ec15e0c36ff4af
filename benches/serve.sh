#!/usr/bin/env bash
# `refine serve` benchmarks (issue 15), each against its peer in the same run:
#  (a) a build queued through the API (`refine build --server`, which follows its events to
#      the end) against the same build run by `refine build`: N trivial sandboxed actions at
#      -j 2, every run with new keys (the shared recipe changes before each run);
#  (b) `POST /v1/plans` of a 10,000-node cached graph against `refine plan --output json`;
#  (c) `GET /v1/artifacts/KIND/KEY` under 64 concurrent connections (wrk): requests per
#      second and latency percentiles.
# Needs: hyperfine, wrk, curl, busybox-static, python3. Usage: benches/serve.sh [ACTIONS_N] [PLAN_N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
refine=${REFINE:-"$root/target/release/refine"}
work=$(mktemp -d /var/tmp/refine-bench-serve.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
actions_n=${1:-100}
plan_n=${2:-10000}
token=bench-token
echo "$token" > "$work/token"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
serve() { # serve WORKSPACE STORE PORT
  "$refine" -C "$1" --store "$2" serve --listen "127.0.0.1:$3" --token-file "$work/token" \
    --database "$work/db-$3.sqlite" 2> "$work/serve-$3.log" &
  pids+=($!)
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$3/healthz" > /dev/null && return; sleep 0.05; done
  echo "refine serve did not start:"; cat "$work/serve-$3.log"; exit 1
}

echo "== (a) $actions_n trivial sandboxed actions at -j 2: refine build vs refine build --server"
python3 "$here/gen_build.py" actions "$actions_n" "$work/act"
store="$work/act-store"
"$refine" -C "$work/act" --store "$store" build //packs:p0 2>/dev/null   # the base, once
p=$(port); serve "$work/act" "$store" "$p"
hyperfine --warmup 1 --min-runs 5 --export-json "$work/a.json" \
  --prepare "echo \"# \$(date +%s%N)\" >> $work/act/recipes/p.sh" \
  -n local "$refine -C $work/act --store $store build //packs:all -j 2 2>/dev/null" \
  -n server "REFINE_SERVE_TOKEN=$token $refine build --server http://127.0.0.1:$p //packs:all -j 2 2>/dev/null"
python3 - "$work/a.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
print(f"(a) build through the server / refine build (median): {r['server'] / r['local']:.3f}x")
PY

echo "== (c) GET /v1/artifacts under 64 connections"
key=$("$refine" -C "$work/act" --store "$store" plan //packs:p0 --output json | python3 -c 'import json,sys; print([n for n in json.load(sys.stdin) if n["label"]=="//packs:p0"][0]["key"])')
url="http://127.0.0.1:$p/v1/artifacts/pack/$key"
curl -sf -H "Authorization: Bearer $token" "$url" > /dev/null
wrk -t 2 -c 64 -d 10s --latency -H "Authorization: Bearer $token" "$url" | tee "$work/wrk.txt"

echo "== (b) plan of a $plan_n-node cached graph: POST /v1/plans vs refine plan --output json"
python3 "$here/gen_build.py" noop "$plan_n" "$work/noop"
"$refine" -C "$work/noop" --store "$work/noop-store" build //... -j 2 2> "$work/noop.log" || { tail "$work/noop.log"; exit 1; }
q=$(port); serve "$work/noop" "$work/noop-store" "$q"
hyperfine --warmup 2 --min-runs 10 --export-json "$work/b.json" \
  -n cli "$refine -C $work/noop --store $work/noop-store plan //... --output json > /dev/null" \
  -n api "curl -sf -X POST -H 'Authorization: Bearer $token' -H 'content-type: application/json' -d '{\"patterns\":[\"//...\"]}' http://127.0.0.1:$q/v1/plans > /dev/null"
python3 - "$work/b.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
print(f"(b) POST /v1/plans / refine plan --output json (median): {r['api'] / r['cli']:.2f}x")
PY
