#!/usr/bin/env bash
# What the web view's test (tests/it/serve_web.rs) needs on a fresh Debian bookworm: a real
# headless browser driven over WebDriver — Debian's `chromium` (/usr/bin/chromium) and
# `chromium-driver` (/usr/bin/chromedriver, built from the same Chromium release, so their
# versions always match). The test starts chromedriver itself on a free loopback port; nothing
# runs as a service. Without recommends: no desktop integration, fonts beyond the defaults or
# GPU drivers, which a headless browser does not use. Idempotent: installs only what is missing.
set -euo pipefail

missing=()
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
[[ -x /usr/bin/chromedriver ]] || missing+=(chromium-driver)
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
