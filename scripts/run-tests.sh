#!/usr/bin/env bash
# Runs every test against the debug build `make build` made. The integration tests start the
# built binaries as processes (they find them in .build/debug) and a real systemd-journald.
set -euo pipefail
cd "$(dirname "$0")/.."
export AUDITD_TEST_BINARY_DIR="$PWD/.build/debug"
# The tests talk to loopback only; the proxy tests start and name their own proxy. A proxy
# from the machine's environment (apt's, say) would route the daemon's requests elsewhere.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY all_proxy ALL_PROXY
for binary in openai-auditd openai-audit-sim; do
  [ -x "$AUDITD_TEST_BINARY_DIR/$binary" ] || { echo "run-tests: $AUDITD_TEST_BINARY_DIR/$binary was not built" >&2; exit 1; }
done
# The packaged units, offline (systemd-analyze verify and security).
scripts/check-units.sh "$AUDITD_TEST_BINARY_DIR/openai-auditd"
# The Debian package as `make deb` builds it (release binary); the package test installs it.
make --no-print-directory deb
AUDITD_TEST_DEB=$(ls -t dist/openai-auditd_*_"$(dpkg --print-architecture)".deb | head -1)
export AUDITD_TEST_DEB
# The package under a real systemd: a booted Debian 12 container (docs/operations.md, "Proven
# under systemd"). Its tree is cached outside the repository; the first run debootstraps it.
scripts/systemd-e2e.sh "$AUDITD_TEST_DEB"
# libFuzzer over the page reader and the formatters, briefly (`make fuzz` runs them longer):
# the regression inputs in Tests/FuzzInputs replay first.
FUZZ_SECONDS=${FUZZ_SECONDS:-20} scripts/fuzz.sh
# The journald tests need a private journal: the whole run happens in its own mount namespace.
for tool in unshare /lib/systemd/systemd-journald journalctl; do
  command -v "$tool" >/dev/null || { echo "run-tests: $tool is missing (make setup installs it)" >&2; exit 1; }
done
# Its own PID namespace too: whatever a failed test leaves running ends with it, and nothing
# outside it (a developer's own journald) can be hit.
unshare --mount --pid --fork --mount-proc --propagation private scripts/test-namespace.sh swift test --skip-build 2>&1 |
  tee .build/test.log
# One plain closing line: the XCTest runner above reports 0 of its own (all tests are Swift Testing).
count=$(grep -oE 'Test run with [0-9]+ tests' .build/test.log | tail -1 | grep -oE '[0-9]+')
[ -n "$count" ] && [ "$count" -gt 0 ] || { echo "run-tests: no test ran" >&2; exit 1; }
echo "tests: $count passed, 0 failed"
