#!/usr/bin/env bash
# What the REAPI tests (tests/it/reapi_farm.rs and the harness tests/it/common/buildgrid.rs)
# need on a fresh Debian bookworm: a real BuildGrid server (`bgd`, the REAPI CAS, ActionCache,
# Execution and Bots services) whose scheduler lives in a real PostgreSQL.
#
#   - Debian's `postgresql` (the server binaries, /usr/lib/postgresql/15/bin; the tests run
#     initdb and postgres themselves, as the `postgres` user, in a temporary folder on a free
#     loopback port: nothing of the packaged cluster is used) and `python3-venv`;
#   - `openssl`, whose command makes the private CA and certificates of the mutual-TLS test;
#   - BuildGrid 0.4.4 from PyPI (the newest release whose `Requires-Python` admits bookworm's
#     python3 3.11; 0.4.5 and later need 3.12) in a venv at /opt/refine-test-tools/buildgrid,
#     every package pinned by version and sha256 in .ci/buildgrid-requirements.txt (made by
#     `uv pip compile --generate-hashes`, its header says how, resolved as of 0.4.4's release
#     with `--exclude-newer 2026-02-27`: the dependencies it was released against) and
#     installed from wheels only with `pip --require-hashes --no-deps`.
#
# Idempotent: the venv is rebuilt only when the requirements file changed since it was made.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

venv=/opt/refine-test-tools/buildgrid
requirements=.ci/buildgrid-requirements.txt

missing=()
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
getent passwd postgres >/dev/null || missing+=(postgresql)
/usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
command -v openssl >/dev/null || missing+=(openssl)
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian's package may start its own cluster as a service on :5432; the tests need nothing
# from it and start their own.

stamp=$venv/.refine-requirements.sha256
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [[ ! -x $venv/bin/bgd || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    echo "setup.d/reapi: installing BuildGrid into $venv" >&2
    # Made in place; the stamp is written last, so an interrupted run is redone from scratch.
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    # Debian's python3, not whatever `python3` comes first on PATH: the version the pins were
    # resolved for.
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        --require-hashes --no-deps --only-binary :all: -r "$requirements"
    echo "$want" >"$stamp"
fi
"$venv/bin/bgd" --help >/dev/null
