#!/usr/bin/env bash
# Runs refine's tests on a fresh Debian machine: installs what the tests need (every
# .ci/setup.d/*.sh script, as root), then the whole workspace's tests.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
for setup in .ci/setup.d/*.sh; do
  [ -e "$setup" ] || continue
  echo "== setup: $setup"
  bash "$setup"
done
cargo test --workspace --locked --no-fail-fast "$@"
