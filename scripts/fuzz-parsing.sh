#!/bin/sh
# Builds a libFuzzer binary from VigilCore + VigilParsing + the syslog framer + Fuzz/Parsing and runs it for a
# fixed budget (default 60 s). Usage: scripts/fuzz-parsing.sh [seconds]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${TMPDIR:-/tmp}/vigil-fuzz-parsing
mkdir -p "$out/corpus"
# One module: copy the sources and drop the cross-module imports.
rm -rf "$out/src" && mkdir -p "$out/src"
for f in "$root"/Sources/VigilCore/*.swift "$root"/Sources/VigilParsing/*.swift "$root"/Sources/VigilSyslog/SyslogFramer.swift "$root"/Fuzz/Parsing/*.swift; do
  sed -e '/^\(public \)\{0,1\}import Vigil[A-Za-z]*$/d' "$f" > "$out/src/$(basename "$(dirname "$f")")_$(basename "$f")"
done
swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name FuzzParsing "$out"/src/*.swift -o "$out/fuzz-parsing"
"$out/fuzz-parsing" -max_total_time="${1:-60}" -max_len=4096 "$out/corpus"
