#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine, as root: every .ci/setup.d/*.sh, in
# order. Each is idempotent (a second run only checks). Called by scripts/test.sh, and by
# .ci/run ahead of it, in the background beside the lints and the test build.
set -euo pipefail
cd "$(dirname "$0")/../.."
for setup in .ci/setup.d/*.sh; do
    [ -e "$setup" ] || continue
    echo "== setup: $setup"
    bash "$setup"
done
