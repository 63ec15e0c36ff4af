#!/usr/bin/env bash
# Tools every part of the test suite and benches needs.
set -euo pipefail
need=()
command -v ninja >/dev/null || need+=(ninja-build)
command -v hyperfine >/dev/null || need+=(hyperfine)
[ -x /usr/bin/time ] || need+=(time)
# readelf: the refinery test reads which compiler made a wheel's ELF files.
command -v readelf >/dev/null || need+=(binutils)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi
