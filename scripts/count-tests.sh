#!/usr/bin/env bash
# count-tests.sh LOG WHAT: one plain closing line from a Swift Testing log, and a failure if
# no test ran (the XCTest runner's own summary reports 0: all tests are Swift Testing).
set -euo pipefail
count=$(grep -oE 'Test run with [0-9]+ tests' "$1" | tail -1 | grep -oE '[0-9]+' || true)
[ -n "$count" ] && [ "$count" -gt 0 ] || { echo "count-tests: no $2 test ran" >&2; exit 1; }
grep -qE 'Test run with [0-9]+ tests .*passed' "$1" || { echo "count-tests: $2 tests failed" >&2; exit 1; }
echo "$2 tests: $count passed, 0 failed"
