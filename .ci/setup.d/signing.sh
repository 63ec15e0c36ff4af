#!/usr/bin/env bash
# What the signing tests need: the in-toto project's reference implementation of DSSE
# verification, securesystemslib (with `cryptography` for Ed25519), pinned exactly and
# installed with pip `--target` into /opt/refine-test-tools/intoto (tests/it/signing.rs puts it
# on PYTHONPATH), so that no system Python package changes. Idempotent.
set -euo pipefail
target=/opt/refine-test-tools/intoto
if [[ ! -d $target/securesystemslib ]]; then
    python3 -m pip install --quiet --disable-pip-version-check --target "$target" \
        'securesystemslib[crypto]==1.6.0' 'cryptography==48.0.0'
fi
