#!/usr/bin/env bash
# What the remote store's and the mirror's tests and benches need on a fresh Debian bookworm:
# Debian's `docker-registry` (the CNCF distribution registry 2.8), `htpasswd` (apache2-utils,
# for the auth test), skopeo and curl (benches/remote.sh), python3 with pip (the mirror test
# installs a wheel from it), and `s3s-fs` (an S3 server over a folder, built with cargo; about
# a minute and a half the first time). Idempotent: installs only what is missing.
set -euo pipefail

missing=()
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian starts the packaged registry as a service on :5000 with its own config; the tests
# start their own on free loopback ports and need nothing from it.

# Unoptimised (`--debug`): the tests move a few small wheels through it, and on two cores the
# build took 91 s against 168 s optimised, time that .ci/run spends beside the test build.
if ! command -v s3s-fs >/dev/null 2>&1 && [[ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs" ]]; then
    cargo install s3s-fs@0.14.1 --features binary --locked --debug
fi
