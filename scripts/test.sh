#!/usr/bin/env bash
# Runs refine's tests on a fresh Debian machine: installs what the tests need
# (scripts/setup/tests.sh: every .ci/setup.d/*.sh script, as root), then the whole workspace's
# tests.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup/tests.sh
cargo test --workspace --locked --no-fail-fast "$@"
