#!/usr/bin/env bash
# Installs the system packages Vigil needs to build and run (Debian). Idempotent: only
# missing packages are installed. Pass --test to add what the test suite needs.
set -euo pipefail
packages=(libsqlite3-dev zlib1g-dev libzstd-dev libjemalloc-dev curl ca-certificates)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(zstd gzip python3 python3-pip bsdutils rsyslog rsyslog-gnutls openssl)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if (( ${#missing[@]} )); then
  echo "installing: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [[ "${1:-}" == "--test" ]]; then
  python3 -c "import pytest, requests" 2>/dev/null || python3 -m pip install -q pytest requests
fi
command -v swift >/dev/null || { echo "swift is not on PATH (expected Swift 6.x, e.g. /opt/swift/usr/bin)"; exit 1; }
