#!/usr/bin/env bash
# Remote execution benchmarks (issue 16, docs/remote-execution.md): refine's client, a BuildGrid
# 0.4.4 server over PostgreSQL and `refine worker`s, all on loopback on this machine, against
# the same builds with the local executor (`refine build` without `--executor`):
#  1. per-action overhead, hyperfine, remote against local, one worker:
#     (a) a trivial action: a pack recipe writing one small file in a busybox root;
#     (b) the PyYAML 6.0.2 wheel action (`//wheels:pyyaml-debian-x86_64-py311` of the repo's
#         workspace: the bookworm x86_64 base, Debian's Python 3.11, the libyaml pack; the
#         x86_64 twin of what scripts/main.sh builds, without qemu). Aim: at most 1.3x.
#  2. staging the bookworm base (12,500 files, 500 MiB) on a worker: a trivial action on it on a
#     fresh worker (empty CAS cache: every blob fetched from the farm), then a second one on
#     the same worker (warm cache: the base's folders bound from the trees the first lease
#     materialised), read from the worker's log line
#     `lease …: exit 0 in S s (staged N files, fetched M blobs, B bytes; bound T trees, …)`. S is the whole
#     lease (Action and Command read, staging, the sandbox run, the outputs uploaded); the
#     trivial leases of 1(a) give what a lease costs besides staging; for scale, `cp -al` of the
#     same tree and `rm -rf` of the copy on this disk (the worker removes each staged root
#     before it reports the lease). Aim: second ≤ 5% of first.
#  3. a 200-node graph (benches/gen_build.py actions: 200 independent trivial packs) at -j 2 on
#     two workers, against the local executor at -j 2.
#
# Every timed build really executes, and the farm's action cache never answers: each rule
# timed carries `env "BENCH_NONCE" "…"`, which hyperfine's --prepare rewrites with a new value
# before each run (the script's `nonce` helper). The nonce changes the target's key (the local
# store misses) and the REAPI Action (the farm's action cache misses) but not the work. The
# store is kept between runs instead of a fresh one per run, so both sides plan against a warm
# store (the base's Merkle tree is cached in it, as in steady use); warm-up runs fill the
# worker's cache and the farm's CAS, so 1 and 3 measure steady state (2 the cold start).
# Every build's summary is checked: each run built its targets.
#
# The farm is set up as tests/it/common/buildgrid.rs does (the same configuration: SQL
# scheduler polling every 0.2 s, assigner every 0.1 s, LRU action cache, disk CAS), in
# temporary folders, and torn down on exit.
#
# Usage: benches/remote_exec.sh   (needs hyperfine, python3, busybox-static, BuildGrid and
#        PostgreSQL as .ci/setup.d/reapi.sh installs them; builds release; run under
#        `nice -n 5`: about 12 minutes on two quiet cores, 16 with a test run beside it)
#   REFINE       the refine binary to time (default: target/release/refine, built here)
#   BENCH_STORE  a store that already holds the wheel's base, runtime and libyaml pack (e.g.
#                the one scripts/main.sh filled, or a test run's shared store); the bench adds
#                its own small artifacts to it. Default: a fresh store here, filled by one local
#                build first (debootstrap and PyPI: a few minutes, not timed)
#   RUNS         hyperfine runs per command for 1(a) (default 10)
#   WHEEL_RUNS   rounds for 1(b) (default 4; a round is one local and one remote run, about 30 s
#                each; rounds, so that load from elsewhere on the machine hits both sides alike:
#                reported are the medians of each side and the median of the per-round ratios)
#   GRAPH_RUNS   rounds for 3 (default 3; about 5 s local and 35 s remote each)
#   STAGE_ROUNDS fresh workers for 2 (default 3)
#   BENCH_KEEP   if set, keep the logs (builds', workers', BuildGrid's) and hyperfine's JSON
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
if [[ -z ${REFINE:-} ]]; then
  cargo build --release --quiet --manifest-path "$root/Cargo.toml"
fi
R=${REFINE:-"$root/target/release/refine"}
runs=${RUNS:-10}
wheel_runs=${WHEEL_RUNS:-4}
graph_runs=${GRAPH_RUNS:-3}
stage_rounds=${STAGE_ROUNDS:-3}
bgd=/opt/refine-test-tools/buildgrid/bin/bgd
pgbin=$(dirname "$(printf '%s\n' /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
for need in hyperfine python3 /bin/busybox "$bgd" "$pgbin/initdb"; do
  command -v "$need" >/dev/null || { echo "benches/remote_exec.sh: \`$need\` is missing; run .ci/setup.d/reapi.sh and .ci/setup.d/sandbox.sh" >&2; exit 1; }
done

work=$(mktemp -d /var/tmp/refine-bench-rexec.XXXXXX)
# PostgreSQL refuses to run as root: as root, its folder belongs to `postgres` and its tools
# run as that user through setpriv (which execs: the postmaster stays this script's child).
pg=$(mktemp -d /tmp/refine-bench-pg.XXXXXX)
as_pg=()
if [[ $(id -u) == 0 ]]; then
  chown postgres: "$pg"
  as_pg=(setpriv --reuid=postgres --regid=postgres --clear-groups --)
fi
pg_pid='' bgd_pid='' workers=()
stop_worker() { # pid: SIGTERM (the worker leaves the farm and exits 0), then wait
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  local status=$?
  if ((status != 0)); then
    for log in "$work"/*.log "$work"/w-*/log "$work/farm/bgd.log" "$pg/postgres.log"; do
      [[ -s $log ]] && { echo "== tail of $log" >&2; tail -15 "$log" >&2; }
    done
  fi
  for w in "${workers[@]}"; do stop_worker "$w"; done
  if [[ -n $bgd_pid ]]; then
    kill -TERM "$bgd_pid" 2>/dev/null || true
    for _ in $(seq 200); do kill -0 "$bgd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$bgd_pid" 2>/dev/null || true
    wait "$bgd_pid" 2>/dev/null || true
  fi
  if [[ -n $pg_pid ]]; then
    (cd "$pg" && "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pg/data" -m fast -w -t 60 stop >/dev/null 2>&1) || kill -QUIT "$pg_pid" 2>/dev/null || true
    wait "$pg_pid" 2>/dev/null || true
  fi
  rm -rf "$pg"
  if [[ -n ${BENCH_KEEP:-} ]]; then rm -rf "$work"/w-*/cache "$work/farm/cas"; echo "kept $work"; else rm -rf "$work"; fi
  echo "== $(date +%T) cleaned up"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
phase() { echo "== $(date +%T) $*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # what, seconds, command...
  local what=$1 secs=$2 i
  shift 2
  for ((i = 0; i < secs * 20; i++)); do "$@" && return 0; sleep 0.05; done
  echo "benches/remote_exec.sh: $what not ready within $secs s" >&2
  return 1
}

# --- The farm: PostgreSQL, `bgd migrate apply`, `bgd server start` (tests/it/common/buildgrid.rs).
phase "starting the farm"
pg_port=$(free_port)
(cd "$pg" && "${as_pg[@]}" "$pgbin/initdb" -D "$pg/data" -U postgres --auth=trust -E UTF8 --locale=C --no-sync --no-instructions) >"$work/initdb.log" 2>&1
(cd "$pg" && exec "${as_pg[@]}" "$pgbin/postgres" -D "$pg/data" -p "$pg_port" -c listen_addresses=127.0.0.1 -k "$pg" \
  -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200) >>"$pg/postgres.log" 2>&1 &
pg_pid=$!
wait_for PostgreSQL 90 "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" -U postgres
"$pgbin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres bgd
db="postgresql://postgres@127.0.0.1:$pg_port/bgd"
"$bgd" migrate apply "$db" >"$work/migrate.log" 2>&1
farm=$work/farm
mkdir -p "$farm/cas" "$farm/work"
port=$(free_port)
cat >"$farm/bgd.yml" <<YML
server:
  - !channel
    address: "127.0.0.1:$port"
    insecure-mode: true
grpc-server-options:
  grpc.so_reuseport: 0
thread-pool-size: 200
connections:
  - !sql-connection &sql
    connection-string: $db
    pool-size: 20
    max-overflow: 20
storages:
  - !disk-storage &cas
    path: $farm/cas
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 100000
    allow-updates: true
    cache-failed-actions: false
schedulers:
  - !sql-scheduler &scheduler
    sql: *sql
    storage: *cas
    action-cache: *ac
    property-set: !dynamic-property-set
      match-property-keys: []
      wildcard-property-keys: []
    bot-session-keepalive-timeout: 30
    session-expiry-timer-interval: 1
    max-job-attempts: 5
    max-execution-timeout: 600
    execution-timer-interval: 1
    poll-interval: 0.2
    bot-poll-interval: 0.2
    assigners:
      - !priority-age-assigner
        count: 1
        interval: 0.1
        jitter-factor: 0.1
        failure-backoff: 0.2
instances:
  - name: "main"
    services:
      - !action-cache
        cache: *ac
      - !execution
        scheduler: *scheduler
        operation-stream-keepalive-timeout: 10
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
YML
(cd "$farm" && PYTHONUNBUFFERED=1 exec "$bgd" server start "$farm/bgd.yml" --pid-file "$farm/bgd.pid") >>"$farm/bgd.log" 2>&1 </dev/null &
bgd_pid=$!
bgd_ready() { [[ -f $farm/bgd.pid ]] && (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
wait_for "bgd server" 90 bgd_ready
url="reapi://127.0.0.1:$port/main"
echo "BuildGrid at $url (PostgreSQL on port $pg_port); refine: $R"

start_workers() { # names: `refine worker`s with fresh caches in $work/w-NAME, started at once
  local name
  for name; do
    mkdir -p "$work/w-$name"
    "$R" worker --bots "$url" --name "$name" --cache "$work/w-$name/cache" </dev/null >"$work/w-$name/log" 2>&1 &
    workers+=("$!")
  done
  # Ready once CreateBotSession has returned (the worker logs its session), as the tests
  # wait: a lease BuildGrid hands out in that reply is not run (the job then waits for
  # BuildGrid's execution timeout), so no work is queued before. About 24 s on an idle farm.
  for name; do
    wait_for "worker $name" 90 grep -qs 'session `' "$work/w-$name/log"
  done
}
stop_workers() {
  for w in "${workers[@]}"; do stop_worker "$w"; done
  workers=()
}
# `nonce FILE...`: a new value for every `"BENCH_NONCE" "…"` in the files.
cat >"$work/nonce" <<'SH'
#!/bin/sh
n=$(date +%s%N)
for f; do sed -i -E "s/\"BENCH_NONCE\" \"[^\"]*\"/\"BENCH_NONCE\" \"$n\"/" "$f"; done
SH
chmod +x "$work/nonce"
# `rounds NAME N PREPARE LOCAL REMOTE`: a warm-up round 0, then rounds 1..N, each one hyperfine
# run of LOCAL and one of REMOTE (PREPARE before each), exported to $work/NAME.ROUND.json.
rounds() {
  local name=$1 n=$2 prepare=$3 local_cmd=$4 remote_cmd=$5 i
  for ((i = 0; i <= n; i++)); do
    echo "-- $name: $([[ $i == 0 ]] && echo warm-up || echo "round $i of $n")"
    hyperfine --runs 1 --export-json "$work/$name.$i.json" --prepare "$prepare" \
      -n local "$local_cmd" -n remote "$remote_cmd"
  done
}
# `built LOG N`: the log holds N summaries `K built, …` with K = $3 (each run executed).
built() {
  local got
  got=$(grep -c "^$3 built, " "$1" || true)
  [[ $got == "$2" ]] || { echo "benches/remote_exec.sh: $1 holds $got builds of $3 actions, not $2" >&2; tail -20 "$1" >&2; exit 1; }
}
arch=$(uname -m)

# --- 1(a) a trivial action in a busybox root.
phase "1(a) a trivial action, local and remote"
ws=$work/tiny
mkdir -p "$ws/rules" "$ws/recipes" "$ws/roots/tiny/bin"
cp /bin/busybox "$ws/roots/tiny/bin/"
for t in sh echo; do ln -s busybox "$ws/roots/tiny/bin/$t"; done
printf 'workspace "tiny"\nplatform "host" arch="%s" policy="linux" base="//bases:tiny"\ndefaults {\n    platform "host"\n}\n' "$arch" >"$ws/workspace.kdl"
printf 'base "tiny" {\n    arch "%s"\n    policy "linux"\n    tree "roots/tiny"\n}\n' "$arch" >"$ws/rules/bases.kdl"
printf 'pack "t" {\n    version "1"\n    recipe "recipes/t.sh"\n    env "BENCH_NONCE" "0"\n}\n' >"$ws/rules/packs.kdl"
# shellcheck disable=SC2016 # expanded by the recipe's shell
echo 'echo hi > "$REFINE_OUT/f"' >"$ws/recipes/t.sh"
"$R" -C "$ws" --store "$work/s-tiny" build //bases:tiny 2>/dev/null
start_workers a
hyperfine --warmup 2 --runs "$runs" --export-json "$work/1a.json" --prepare "$work/nonce $ws/rules/packs.kdl" \
  -n local "$R -C $ws --store $work/s-tiny build //packs:t 2>>$work/1a-local.log" \
  -n remote "$R -C $ws --store $work/s-tiny build //packs:t --executor $url 2>>$work/1a-remote.log"
built "$work/1a-local.log" $((runs + 2)) 1
built "$work/1a-remote.log" $((runs + 2)) 1

# --- 1(b) the PyYAML wheel action, in a copy of the repo's workspace.
ws=$work/ws
mkdir -p "$ws"
cp -a "$root/workspace.kdl" "$root/rules" "$root/catalog" "$root/recipes" "$root/examples" "$ws/"
sed -i '/^wheel "pyyaml-debian" {/a\    env "BENCH_NONCE" "0"' "$ws/rules/wheels.kdl"
grep -q BENCH_NONCE "$ws/rules/wheels.kdl"
# For 2: a trivial pack on the x86_64 bookworm base.
printf 'pack "bench-touch" {\n    platform "x86_64"\n    version "1"\n    recipe "recipes/bench-touch.sh"\n    env "BENCH_NONCE" "0"\n}\n' >"$ws/rules/bench.kdl"
# shellcheck disable=SC2016
echo 'echo ok > "$REFINE_OUT/ok"' >"$ws/recipes/bench-touch.sh"
wheel=//wheels:pyyaml-debian-x86_64-py311
store=${BENCH_STORE:-$work/store}
echo "Filling $store with the wheel's base, runtime and pack, and fetching its sources (not timed)"
mapfile -t deps < <("$R" -C "$ws" query "deps($wheel) - $wheel")
((${#deps[@]} > 0))
"$R" -C "$ws" --store "$store" build "${deps[@]}" >/dev/null 2>"$work/fill.log"
"$R" -C "$ws" --store "$store" fetch "$wheel" >/dev/null 2>>"$work/fill.log"
touch_label=$("$R" -C "$ws" query '//...' | grep -m1 ':bench-touch$')
phase "1(b) the PyYAML wheel action, local and remote"
# Worker a's leases from here on are the wheel's (the report splits its log at this line).
grep -c ': exit 0 in ' "$work/w-a/log" > "$work/1b.first-lease" || true
rounds 1b "$wheel_runs" "$work/nonce $ws/rules/wheels.kdl" \
  "$R -C $ws --store $store build $wheel 2>>$work/1b-local.log" \
  "$R -C $ws --store $store build $wheel --executor $url 2>>$work/1b-remote.log"
built "$work/1b-local.log" $((wheel_runs + 1)) 1
built "$work/1b-remote.log" $((wheel_runs + 1)) 1
stop_workers

# --- 2. staging the bookworm base: a fresh worker, two trivial actions on that base.
phase "2. staging the bookworm base on fresh workers"
for ((i = 1; i <= stage_rounds; i++)); do
  start_workers "stage$i"
  for _ in cold warm; do
    "$work/nonce" "$ws/rules/bench.kdl"
    "$R" -C "$ws" --store "$store" build "$touch_label" --executor "$url" 2>>"$work/2.log"
  done
  stop_workers
  rm -rf "$work/w-stage$i/cache"
done
built "$work/2.log" $((stage_rounds * 2)) 1
# The floor of staging by hard links on this disk: `cp -al` of the base's tree, and `rm -rf` of
# the copy (the worker removes each staged root before it reports the lease).
base=//bases:bookworm-x86_64
digest=$("$R" -C "$ws" --store "$store" plan "$base" -o json | python3 -c 'import json,sys; print([n for n in json.load(sys.stdin) if n["label"] == sys.argv[1]][0]["digest"].split(":")[1])' "$base")
tree=$store/trees/$digest
if [[ $(stat -c %d "$tree") != $(stat -c %d "$work") ]]; then
  cp -a "$tree" "$work/base-tree"
  tree=$work/base-tree
fi
hyperfine --runs 3 --export-json "$work/2-link.json" --prepare "rm -rf $work/linked" \
  -n 'cp -al' "cp -al $tree $work/linked"
hyperfine --runs 3 --export-json "$work/2-rm.json" --prepare "rm -rf $work/linked; cp -al $tree $work/linked" \
  -n 'rm -rf' "rm -rf $work/linked"
rm -rf "$work/linked" "$work/base-tree"

# --- 3. 200 independent trivial actions at -j 2: two workers against the local executor.
phase "3. 200 trivial actions at -j 2, local and on two workers"
python3 "$here/gen_build.py" actions 200 "$work/g200"
sed -i 's|^    recipe "recipes/p.sh"$|&\n    env "BENCH_NONCE" "0"|' "$work/g200/rules/packs.kdl"
[[ $(grep -c BENCH_NONCE "$work/g200/rules/packs.kdl") == 200 ]]
"$R" -C "$work/g200" --store "$work/s-g200" build //bases:tiny 2>/dev/null
start_workers b c
rounds 3 "$graph_runs" "$work/nonce $work/g200/rules/packs.kdl" \
  "$R -C $work/g200 --store $work/s-g200 build //packs:all -j 2 2>>$work/3-local.log" \
  "$R -C $work/g200 --store $work/s-g200 build //packs:all -j 2 --executor $url 2>>$work/3-remote.log"
built "$work/3-local.log" $((graph_runs + 1)) 200
built "$work/3-remote.log" $((graph_runs + 1)) 200
leases_b=$(grep -c ': exit 0 in ' "$work/w-b/log" || true)
leases_c=$(grep -c ': exit 0 in ' "$work/w-c/log" || true)
stop_workers

# --- The report.
phase "done"
python3 - "$work" "$stage_rounds" "$leases_b" "$leases_c" <<'PY'
import glob, json, re, statistics, sys
work, rounds, lb, lc = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
lease = re.compile(r"exit 0 in ([0-9.]+) s \(staged (\d+) files, fetched (\d+) blobs, (\d+) bytes[;)]")

def medians(name):
    """(local, remote, ratio, spread): medians of each side, and the median of the ratios of
    each round (1a: hyperfine's one run, the ratio of the medians); spread: "±stddev" or the
    per-round ratios."""
    if name == "1a":
        r = {x["command"]: x for x in json.load(open(f"{work}/1a.json"))["results"]}
        lo, re_ = r["local"]["median"], r["remote"]["median"]
        return lo, re_, re_ / lo, f"±{r['local']['stddev'] or 0:.3f} s / ±{r['remote']['stddev'] or 0:.3f} s"
    per = []
    for f in sorted(glob.glob(f"{work}/{name}.*.json"), key=lambda f: int(f.split(".")[-2])):
        if f.endswith(".0.json"):
            continue  # the warm-up round
        r = {x["command"]: x["mean"] for x in json.load(open(f))["results"]}
        per.append((r["local"], r["remote"]))
    ratios = [b / a for a, b in per]
    return (statistics.median(a for a, _ in per), statistics.median(b for _, b in per),
            statistics.median(ratios), "rounds: " + ", ".join(f"{x:.2f}" for x in ratios))

def leases(path):
    return [tuple(float(g) for g in m.groups()) for m in map(lease.search, open(path)) if m]

print("\n| measure | local (median) | remote (median) | remote / local | spread |")
print("|---|---|---|---|---|")
rows = [("1a", "trivial action, busybox root"),
        ("1b", "PyYAML 6.0.2 wheel action (x86_64)"),
        ("3", "200 trivial actions, -j 2 (remote: 2 workers)")]
ratios = {}
for key, what in rows:
    lo, re_, ratios[key], spread = medians(key)
    print(f"| {key} {what} | {lo:.3f} s | {re_:.3f} s | {ratios[key]:.2f}x | {spread} |")
lo, re_, _, _ = medians("1a")
print(f"\n1(a) remote overhead per action: {1000 * (re_ - lo):.0f} ms")
lo, re_, _, _ = medians("1b")
print(f"1(b) wheel: remote/local {ratios['1b']:.2f}x (aim: at most 1.3x); "
      f"overhead {re_ - lo:.2f} s")
# Where the wheel's remote time goes: the worker's leases (warm cache; the warm-up's cold one
# left out) against the whole builds.
lo, re_, _, _ = medians("1b")
first_wheel = int(open(f"{work}/1b.first-lease").read())
wheel_leases = leases(f"{work}/w-a/log")[first_wheel:][1:]
lease_t = statistics.median(l[0] for l in wheel_leases)
print(f"     the worker's lease (median) {lease_t:.2f} s (staged {int(wheel_leases[0][1])} files besides bound trees, "
      f"warm cache): {lease_t - lo:+.2f} s against the whole local build (staging, removing the "
      f"staged root, uploading outputs), then {re_ - lease_t:+.2f} s around the lease (planning, "
      f"the upload check, queueing and polling, the result's download and store)")
lo, re_, _, _ = medians("3")
print(f"3 200 actions: remote/local {ratios['3']:.2f}x; per action "
      f"{1000 * lo / 200:.1f} ms local, {1000 * re_ / 200:.1f} ms remote "
      f"(leases: worker b {lb}, worker c {lc})")

tiny = [l[0] for l in leases(f"{work}/w-a/log")[:first_wheel]][1:]
other = statistics.median(tiny) if tiny else 0.0
print(f"\n2. staging the bookworm base on a fresh worker, then again on the same worker "
      f"({rounds} rounds); a trivial lease on the busybox root takes {1000 * other:.0f} ms "
      f"(median of {len(tiny)}, 1(a)'s worker): the rest of a lease besides staging\n")
print("| round | files staged (first / second) | first lease (cold cache) | fetched | second lease (warm) | fetched | second / first |")
print("|---|---|---|---|---|---|---|")
firsts, seconds = [], []
for i in range(1, rounds + 1):
    ls = leases(f"{work}/w-stage{i}/log")
    assert len(ls) == 2, ls
    (t1, files, f1, b1), (t2, files2, f2, _) = ls
    firsts.append(t1); seconds.append(t2)
    print(f"| {i} | {int(files)} / {int(files2)} | {t1:.2f} s | {int(f1)} blobs, {b1 / 2**20:.0f} MiB | "
          f"{t2:.2f} s | {int(f2)} blobs | {100 * t2 / t1:.1f}% |")
m1, m2 = statistics.median(firsts), statistics.median(seconds)
link = json.load(open(f"{work}/2-link.json"))["results"][0]["median"]
rm = json.load(open(f"{work}/2-rm.json"))["results"][0]["median"]
print(f"\nThe same tree on this disk: `cp -al` {link:.2f} s, `rm -rf` of the copy {rm:.2f} s "
      f"(median): a staging by hard links that removes its root costs at least {link + rm:.2f} s, "
      f"{100 * (link + rm) / m1:.1f}% of the first lease")
print(f"\n2 staging: second/first (whole leases, median) {100 * m2 / m1:.1f}% (aim: at most 5%); "
      f"staging alone, less the {1000 * other:.0f} ms of a trivial lease: "
      f"{100 * max(m2 - other, 0) / max(m1 - other, 1e-9):.1f}%")
PY
