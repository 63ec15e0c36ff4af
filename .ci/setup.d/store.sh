#!/usr/bin/env bash
# What the local store's tests and benches need on a fresh Debian bookworm: skopeo (reads the
# OCI layout refine writes), b3sum and hyperfine (benches/tree_hash.sh). Idempotent.
set -euo pipefail

missing=()
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v b3sum >/dev/null 2>&1 || missing+=(b3sum)
command -v hyperfine >/dev/null 2>&1 || missing+=(hyperfine)
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
