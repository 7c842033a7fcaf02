#!/usr/bin/env bash
# libFuzzer over the code that reads what others write: the page reader (any bytes as an API
# page), the four syslog formatters (any event through RFC 5424, RFC 3164, CEF and LEEF) and
# the configuration reader (any bytes as config.yaml). Each target is compiled by swiftc with
# -sanitize=fuzzer,address from exactly the sources it exercises, so they are what is
# instrumented and SwiftPM's own build is left alone; the configuration's dependencies (Yams
# with its C parser, which is instrumented too, and swift-log) are built from the package's
# checkouts. Each runs for FUZZ_SECONDS (default 300) from its inputs in
# Tests/FuzzInputs/<target>/: seeds (real pages and events from the simulator, the example
# configurations) and every input that once crashed it, kept as a regression. New coverage
# goes to .build/fuzz/<target>/corpus; a crash fails the run and leaves its input in
# .build/fuzz/<target>/ (fix the code, then keep the input in Tests/FuzzInputs/<target>/).
# Usage: scripts/fuzz.sh [page-reader|formats|configuration]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-300}
only=${1:-}
out=.build/fuzz
s=Sources/AuditShipper
# Whole folders where the target needs all of one; single files where it needs one type.
reader="$(echo $s/Source/PageReader/*.swift $s/Event/*.swift) $s/Detections/Detection.swift $s/Detections/SigmaLevel.swift"
formats="$(echo $s/Formats/*.swift) $s/Sinks/Receipt.swift $s/Config/TimeSpec.swift $s/Config/String+Editing.swift
  $s/Source/HTTPDate.swift $s/Service/AuditShipperVersion.swift"
declare -A sources=(
  [page-reader]="$reader Fuzz/PageReaderFuzz.swift"
  [formats]="$reader $formats Fuzz/FormatsFuzz.swift"
  [configuration]="$reader $formats $s/Config/ConfigNode.swift $s/Config/ConfigurationLoader.swift
    $s/Config/ConfigurationReader.swift $s/Config/Configuration.swift $s/Config/Configuration+Reload.swift
    $s/Config/Configuration+HTTPSinks.swift $s/Config/Configuration+Coordination.swift
    $s/Config/ConfigurationReader+Coordination.swift
    $s/Config/ConfigurationError.swift $s/Config/ConfigurationKey.swift $s/Network/ProxySettings.swift $s/Network/ProxyError.swift
    $s/Source/AuditLogQuery.swift $s/Source/AuditLogFilters.swift
    $s/Cycle/CycleSettings.swift $s/Cycle/TenantEvents.swift $s/Cycle/CycleReport.swift
    $s/State/AuditState.swift $s/State/StateSource.swift $s/State/SinkPosition.swift $s/State/RecentIDs.swift
    $(echo $s/Diagnostics/*.swift $s/System/*.swift) Fuzz/ConfigurationFuzz.swift"
)
declare -A maxlen=([page-reader]=65536 [formats]=16384 [configuration]=8192)

# ld.gold warns about every AddressSanitizer helper it cannot export; nothing to act on.
quiet() { grep -v "Cannot export local symbol" >&2 || true; }

# Yams (its C parser instrumented, so the fuzzer sees into it) and swift-log, from the checkouts.
dependencies() {
  [ -d .build/checkouts/Yams ] && [ -d .build/checkouts/swift-log ] || swift package resolve
  local deps=$out/deps yams=.build/checkouts/Yams/Sources
  mkdir -p "$deps"
  # Built once per version of the checkouts.
  local stamp
  stamp=$(cat .build/checkouts/Yams/.git/HEAD .build/checkouts/swift-log/.git/HEAD 2>/dev/null || echo none)
  if [ "$(cat "$deps/stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -f "$deps"/*
    for c in "$yams"/CYaml/src/*.c; do
      clang -c -O1 -g -fsanitize=fuzzer-no-link,address -I"$yams/CYaml/include" "$c" -o "$deps/$(basename "$c" .c).o"
    done
    ar rcs "$deps/libCYaml.a" "$deps"/*.o
    local logging
    mapfile -t logging < <(find .build/checkouts/swift-log/Sources/Logging -name '*.swift')
    swiftc -O -g -parse-as-library -DSWIFT_PACKAGE -package-name swift_log -emit-module -emit-library -static \
      -module-name Logging "${logging[@]}" -emit-module-path "$deps/Logging.swiftmodule" -o "$deps/libLogging.a" \
      2> >(quiet)
    swiftc -O -g -sanitize=fuzzer,address -DSWIFT_PACKAGE -parse-as-library -emit-module -emit-library -static \
      -module-name Yams -I "$yams/CYaml/include" "$yams"/Yams/*.swift -emit-module-path "$deps/Yams.swiftmodule" \
      -o "$deps/libYams.a" 2> >(quiet)
    echo "$stamp" >"$deps/stamp"
  fi
  echo "-I $deps -I $yams/CYaml/include -L $deps -lYams -lLogging -lCYaml"
}

for target in page-reader formats configuration; do
  [ -z "$only" ] || [ "$only" = "$target" ] || continue
  mkdir -p "$out/$target/corpus"
  flags=""
  [ "$target" != configuration ] || flags=$(dependencies)
  # shellcheck disable=SC2086 # the source lists and flags are words
  swiftc -O -g -sanitize=fuzzer,address -parse-as-library -module-name Fuzz $flags ${sources[$target]} \
    -o "$out/$target/fuzz" 2> >(quiet)
  echo "fuzz: $target for ${seconds}s"
  "$out/$target/fuzz" -max_total_time="$seconds" -max_len="${maxlen[$target]}" -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$out/$target/" "$out/$target/corpus" "Tests/FuzzInputs/$target" \
    2>"$out/$target/log" || {
    tail -40 "$out/$target/log" >&2
    echo "fuzz: $target crashed; the input is in $out/$target/ (fix it, keep it in Tests/FuzzInputs/$target)" >&2
    exit 1
  }
  grep -E "DONE|stat::number_of_executed_units|stat::peak_rss_mb" "$out/$target/log" | sed "s/^/fuzz: $target: /"
done
