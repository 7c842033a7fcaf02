#!/usr/bin/env bash
# Runs every test against the debug build `make build` made. The integration tests start the
# built binaries as processes; they find them in .build/debug.
set -euo pipefail
cd "$(dirname "$0")/.."
export AUDITD_TEST_BINARY_DIR="$PWD/.build/debug"
for binary in openai-auditd openai-audit-sim; do
  [ -x "$AUDITD_TEST_BINARY_DIR/$binary" ] || { echo "run-tests: $AUDITD_TEST_BINARY_DIR/$binary was not built" >&2; exit 1; }
done
swift test --skip-build 2>&1 | tee .build/test.log
