#!/usr/bin/env bash
# The main job on a fresh Debian machine: set up only what it needs (qemu-user-static in
# binfmt_misc, debootstrap: scripts/setup/emulation.sh; no test servers, no test roots), build
# refine, then build a real manylinux_2_31 s390x wheel (PyYAML with libyaml, from its sdist,
# compiled by native cross compilers inside the emulated root: docs/toolchains.md) into the
# embedded local store and copy it to ./wheels/.
#   scripts/main.sh [TARGET]      default //wheels:pyyaml-debian-repaired-s390x-2_31-py311
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup/emulation.sh
cargo build --release --locked
refine="$root/target/release/refine"
target=${1:-//wheels:pyyaml-debian-repaired-s390x-2_31-py311}
"$refine" doctor || true
"$refine" build "$target" --out "$root/wheels"
echo "The wheel is in $root/wheels/ (and in the local store: $("$refine" store path))."
