#!/usr/bin/env bash
# Planning a build request of about 200 built packages with everything cached, against
# `refine plan` of the same targets written as rules (issue 14's aim: at most 1.2x).
#
# The request is real: requests/big.txt names 34 applications and libraries, whose x86_64
# closure for CPython 3.11 is about 260 packages. A first lock (`reuse-wheels`) says which are
# pure Python; the request then takes up to N of them (build backends excepted) from their
# sdists, is locked again, and built (--keep-going; packages whose sdists do not build offline
# go back to the index's wheel and the request is locked again). benches/gen_request.py then
# writes the lock's wheels as wheel rules with inline repairs, in a second copy of the
# workspace; both copies share the store, and the script checks that both plans are all
# cached and hold the same keys before it times them.
#
# Preparing takes a while (measured on the 2-core VM, 2026-12-01: 13 minutes from an empty
# store, of which 11 for the 197 wheels and their repairs). Needs: hyperfine, python3, network to Debian's
# mirror and the package index. Usage: benches/request-plan.sh [N] [STORE]
# (STORE kept between runs skips the building.)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
n=${1:-200}
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
refine="${CARGO_TARGET_DIR:-$root/target}/release/refine"
work=$(mktemp -d /var/tmp/refine-bench-request-plan.XXXXXX)
# KEEP=1 keeps the two workspaces (printed at the end), to profile one arm.
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
store=${2:-$work/store}
runtime=//runtimes:debian-python

# The request arm: the repository's workspace plus requests/big.*.
req="$work/request"
mkdir -p "$req"
cp -a "$root"/{workspace.kdl,rules,catalog,recipes,examples} "$req"/
mkdir -p "$req/requests"
cat > "$req/requests/big.txt" <<'EOF'
sphinx
sphinx-rtd-theme
myst-parser
mkdocs-material
flask
django
djangorestframework
celery
boto3
pytest
pytest-cov
pytest-xdist
hypothesis
black
isort
pylint
flake8
tox
pre-commit
twine
poetry
jupyter-server
httpx
rich
typer
sqlalchemy
alembic
requests-oauthlib
google-auth
kubernetes
ansible-lint
cookiecutter
scrapy
nox
EOF
cat > "$req/requests/big.kdl" <<EOF
request "big" {
    platforms "x86_64"
    python "3.11"
    runtime "$runtime"
    requirements "big.txt"
    strategy "reuse-wheels"
    keep-going
}
EOF
# A package whose build requirements cannot be pinned for the platform (its lock error
# names it) goes back to the index's wheel; up to ten of them.
lock() {
  local tries
  for tries in 1 2 3 4 5 6 7 8 9 10; do
    "$refine" -C "$req" --store "$store" request lock big > /dev/null 2> "$work/lock.log" && return 0
    local bad
    bad=$(sed -n 's/.*The build requirements of `\([^`]*\)`.*/\1/p' "$work/lock.log" | head -1)
    [ -n "$bad" ] || { cat "$work/lock.log"; exit 1; }
    echo "   $bad: its build requirements cannot be pinned; taken from the index instead"
    python3 "$here/gen_request.py" drop "$req/requests/big.kdl" "$bad"
  done
  cat "$work/lock.log"; exit 1
}
lock
echo "== closure: $(grep -c '^    package ' "$req/requests/big.lock") packages"
python3 "$here/gen_request.py" sdists "$req/requests/big.lock" "$n" "$req/requests/big.kdl" > /dev/null
lock

# Build; packages that fail go back to the index's wheel, up to six rounds.
for round in 1 2 3 4 5 6; do
  echo "== build round $round: $(python3 "$here/gen_request.py" built "$req/requests/big.lock") packages from sdists"
  start=$(date +%s)
  "$refine" -C "$req" --store "$store" build '//requests/big/...' -j 2 -k \
    --events "$work/events.jsonl" > /dev/null 2> "$work/build.log" && break
  echo "   ($(( $(date +%s) - start )) s)"
  if [ ! -s "$work/events.jsonl" ]; then
    # Build requirements that wait on each other (a cycle through several packages): the
    # first package of the cycle goes back to the index's wheel.
    cycle=$(tr -d '\n│ ' < "$work/build.log" | sed -n 's/.*Dependencycycle:\/\/requests\/big:\([^→]*\)-x86_64-py311→.*/\1/p')
    [ -n "$cycle" ] || { tail -30 "$work/build.log"; exit 1; }
    echo "   $cycle: a build-requirement cycle; taken from the index instead"
    python3 "$here/gen_request.py" drop "$req/requests/big.kdl" "$cycle"
    lock
    continue
  fi
  failed=$(python3 - "$work/events.jsonl" <<'PY'
import json, re, sys
names = set()
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("event") == "action-fail":
        name = e["label"].split(":", 1)[1]
        names.add(re.sub(r"(-repaired)?-x86_64-py311$", "", name))
print(" ".join(sorted(names)))
PY
)
  [ -n "$failed" ] || { tail -20 "$work/build.log"; exit 1; }
  [ "$round" != 6 ] || { echo "still failing after six rounds: $failed"; exit 1; }
  echo "   failed, taken from the index instead: $failed"
  # shellcheck disable=SC2086 # a list of names
  python3 "$here/gen_request.py" drop "$req/requests/big.kdl" $failed
  lock
done
built=$(python3 "$here/gen_request.py" built "$req/requests/big.lock")

# The rules arm: the same workspace without the request, the wheels as rules.
rules="$work/rules"
mkdir -p "$rules"
cp -a "$root"/{workspace.kdl,rules,catalog,recipes,examples} "$rules"/
python3 "$here/gen_request.py" rules "$req/requests/big.lock" "$runtime" "$rules/rules/big.kdl"

plan() { "$refine" -C "$1" --store "$store" plan "$2" --output json; }
plan "$req" '//requests/big/...' > "$work/plan-request.json"
plan "$rules" '//big:all' > "$work/plan-rules.json"
python3 - "$work/plan-request.json" "$work/plan-rules.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for name, plan in (("request", a), ("rules", b)):
    not_cached = [n["label"] for n in plan if n["status"] != "cached"]
    assert not not_cached, f"{name}: not cached: {not_cached[:5]}"
ka, kb = sorted(n["key"] for n in a), sorted(n["key"] for n in b)
assert ka == kb, f"the two plans' keys differ: {len(set(ka) ^ set(kb))} keys"
print(f"== both plans: {len(a)} nodes, all cached, the same keys")
PY

echo "== plan of $built built packages (wheels and repairs): request vs rules"
hyperfine --warmup 2 --min-runs 15 --export-json "$work/plan.json" \
  -n request "$refine -C $req --store $store plan '//requests/big/...' > /dev/null" \
  -n rules "$refine -C $rules --store $store plan '//big:all' > /dev/null"
python3 - "$work/plan.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
print(f"plan ratio request/rules: {r['request'] / r['rules']:.2f}x (median)")
PY
[ -z "${KEEP:-}" ] || echo "workspaces kept: $req $rules (store $store)"
