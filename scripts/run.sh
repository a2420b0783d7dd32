#!/usr/bin/env bash
# README command 1: install what Vigil needs, build a release binary, start `vigil serve`
# with the embedded defaults (SQLite under ./data, HTTP on 127.0.0.1:8080). Extra arguments
# go to `vigil serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"
bash scripts/install-deps.sh
swift build -c release --product vigil
exec .build/release/vigil serve "$@"
