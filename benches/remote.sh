#!/usr/bin/env bash
# Remote store benchmarks against Debian's docker-registry on loopback (see docs/remote.md):
#  1. push then pull of a 256 MiB artifact through refine, against `skopeo copy` of the same
#     bytes (refine's store is an OCI layout) to and from the same registry, each time to a
#     new repository: warm (both mount the blob from a repository that has it) and cold (both
#     upload it); peak RSS of refine.
#  2. planning N (default 1000) targets whose keys are all in the registry only, against N
#     HEAD requests by `curl --parallel`.
# Usage: benches/remote.sh [N]   (needs hyperfine, skopeo, curl, /usr/bin/time; builds release)
#   REFINE  the refine binary to time (default: target/release/refine, built here), e.g. an
#           older build for a before/after comparison in one sitting
set -euo pipefail
N=${1:-1000}
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z ${REFINE:-} ]]; then
  cargo build --release --quiet --manifest-path "$root/Cargo.toml"
fi
R=${REFINE:-"$root/target/release/refine"}
work=$(mktemp -d)
trap 'kill "${reg_pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/reg.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/regdata
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$work/reg.yml" >/dev/null 2>&1 &
reg_pid=$!
until curl -fs "http://127.0.0.1:$port/v2/" >/dev/null; do sleep 0.05; done
arch=$(uname -m)

# 1. A 256 MiB artifact of random bytes (zstd cannot shrink them), made by a pack recipe in
#    a busybox root, so that planning it hashes no big workspace file.
ws="$work/big"; mkdir -p "$ws/rules" "$ws/recipes" "$ws/roots/tiny/bin"
cp /bin/busybox "$ws/roots/tiny/bin/"
for t in sh head mkdir; do ln -s busybox "$ws/roots/tiny/bin/$t"; done
printf 'workspace "big"\nplatform "host" arch="%s" policy="linux" base="//bases:tiny"\ndefaults {\n    platform "host"\n}\n' "$arch" > "$ws/workspace.kdl"
printf 'base "tiny" {\n    arch "%s"\n    policy "linux"\n    tree "roots/tiny"\n}\n' "$arch" > "$ws/rules/bases.kdl"
printf 'pack "big" {\n    version "1"\n    recipe "recipes/big.sh"\n}\n' > "$ws/rules/packs.kdl"
echo 'head -c 268435456 /dev/urandom > $REFINE_OUT/blob' > "$ws/recipes/big.sh"
"$R" -C "$ws" --store "$work/s-big" build //packs:big 2>/dev/null
key=$("$R" -C "$ws" --store "$work/s-big" plan //packs:big -o json | python3 -c 'import json,sys; print([n for n in json.load(sys.stdin) if n["label"] == "//packs:big"][0]["key"])')
hyperfine --warmup 1 --runs 5 --export-markdown "$work/big.md" \
  --shell bash --prepare "rm -rf $work/s-pull $work/sk-pull" \
  -n refine "p=r\$RANDOM\$RANDOM; $R -C $ws --store $work/s-big --remote oci://127.0.0.1:$port/\$p push //packs:big >/dev/null 2>&1 && $R -C $ws --store $work/s-pull --remote oci://127.0.0.1:$port/\$p pull //packs:big >/dev/null 2>&1" \
  -n skopeo "p=s\$RANDOM\$RANDOM; skopeo copy -q --dest-tls-verify=false oci:$work/s-big:$key docker://127.0.0.1:$port/\$p/pack:$key && skopeo copy -q --src-tls-verify=false docker://127.0.0.1:$port/\$p/pack:$key oci:$work/sk-pull:$key"
cat "$work/big.md"
# The same with every push a real upload: each repository is new, and after the first run both
# tools know the blob is in the registry already and ask it to mount the blob instead (refine
# from its store's `locations/`, skopeo from its blob-info cache). Cold: both forget first.
# skopeo's cache (root: /var/lib/containers/cache) is set aside and put back at exit.
sk_cache=/var/lib/containers/cache/blob-info-cache-v1.boltdb
[[ $(id -u) == 0 ]] || sk_cache=${XDG_DATA_HOME:-$HOME/.local/share}/containers/cache/blob-info-cache-v1.boltdb
if [[ -f $sk_cache ]]; then cp "$sk_cache" "$work/sk-cache.saved"; fi
trap 'kill "${reg_pid:-0}" 2>/dev/null || true; if [[ -f $work/sk-cache.saved ]]; then cp "$work/sk-cache.saved" "$sk_cache"; fi; rm -rf "$work"' EXIT
hyperfine --warmup 1 --runs 5 --export-markdown "$work/big-cold.md" \
  --shell bash --prepare "rm -rf $work/s-pull $work/sk-pull $work/s-big/locations/* $sk_cache" \
  -n "refine (cold)" "p=r\$RANDOM\$RANDOM; $R -C $ws --store $work/s-big --remote oci://127.0.0.1:$port/\$p push //packs:big >/dev/null 2>&1 && $R -C $ws --store $work/s-pull --remote oci://127.0.0.1:$port/\$p pull //packs:big >/dev/null 2>&1" \
  -n "skopeo (cold)" "p=s\$RANDOM\$RANDOM; skopeo copy -q --dest-tls-verify=false oci:$work/s-big:$key docker://127.0.0.1:$port/\$p/pack:$key && skopeo copy -q --src-tls-verify=false docker://127.0.0.1:$port/\$p/pack:$key oci:$work/sk-pull:$key"
cat "$work/big-cold.md"
rm -rf "$work/s-pull"
push_rss=$(/usr/bin/time -f %M "$R" -C "$ws" --store "$work/s-big" --remote "oci://127.0.0.1:$port/rss" push //packs:big 2>&1 >/dev/null | tail -1)
pull_rss=$(/usr/bin/time -f %M "$R" -C "$ws" --store "$work/s-pull" --remote "oci://127.0.0.1:$port/rss" pull //packs:big 2>&1 >/dev/null | tail -1)
echo "refine peak RSS: push ${push_rss} KiB, pull ${pull_rss} KiB (artifact: 262144 KiB)"

# 2. N tiny bases, pushed once; then planning them from an empty store.
ws="$work/many"; mkdir -p "$ws/rules"
printf 'workspace "many"\nplatform "host" arch="%s" policy="linux" base="//bases:b0"\ndefaults {\n    platform "host"\n}\n' "$arch" > "$ws/workspace.kdl"
for i in $(seq 0 $((N - 1))); do
  mkdir -p "$ws/roots/b$i"; echo "$i" > "$ws/roots/b$i/f"
  printf 'base "b%s" {\n    arch "%s"\n    policy "linux"\n    tree "roots/b%s"\n}\n' "$i" "$arch" "$i"
done > "$ws/rules/bases.kdl"
"$R" -C "$ws" --store "$work/s-many" --remote "oci://127.0.0.1:$port/many" build -j 2 //... 2>/dev/null
"$R" -C "$ws" --store "$work/s-many" plan //... -o json | python3 -c '
import json, sys
for n in json.load(sys.stdin):
    k = n["key"]
    print(f"url = \"http://127.0.0.1:'"$port"'/v2/many/base/manifests/{k}\"\noutput = \"/dev/null\"")
' > "$work/curl.cfg"
hyperfine --shell bash --warmup 2 --runs 10 --export-markdown "$work/plan.md" \
  --prepare "rm -rf $work/s-empty" \
  -n "refine plan ($N remote keys)" "$R -C $ws --store $work/s-empty --remote oci://127.0.0.1:$port/many plan //... >/dev/null" \
  -n "curl --parallel ($N HEAD)" "curl -s --parallel --parallel-max 32 -I -H 'Accept: application/vnd.oci.image.manifest.v1+json' -K $work/curl.cfg >/dev/null"
cat "$work/plan.md"
