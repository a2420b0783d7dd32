#!/usr/bin/env bash
# README command 2 (and what CI runs): install what the tests need, build, run the Swift
# unit tests, the Python integration tests against live servers, and the storage gate.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"
bash scripts/install-deps.sh --test
swift build --build-tests
echo "== swift test"
swift test --skip-build
echo "== integration tests (live servers, real HTTP clients)"
VIGIL_BIN="$PWD/.build/debug/vigil" python3 -m pytest -q tests/integration
echo "== gates"
.build/debug/vigil gates
