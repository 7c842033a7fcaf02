#!/usr/bin/env bash
# The integration tests (`make integration`), against the debug build `make build` made: they
# start the built binaries as processes (found in .build/debug), a real systemd-journald,
# rsyslogd and the rest. AUDITD_TEST_DEB names the package the package test installs.
set -euo pipefail
cd "$(dirname "$0")/.."
export AUDITD_TEST_BINARY_DIR="$PWD/.build/debug"
# The tests talk to loopback only; the proxy tests start and name their own proxy. A proxy
# from the machine's environment (apt's, say) would route the daemon's requests elsewhere.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY all_proxy ALL_PROXY
for binary in openai-auditd openai-audit-sim; do
  [ -x "$AUDITD_TEST_BINARY_DIR/$binary" ] || { echo "run-tests: $AUDITD_TEST_BINARY_DIR/$binary was not built" >&2; exit 1; }
done
# The journald tests need a private journal: the whole run happens in its own mount namespace.
for tool in unshare /lib/systemd/systemd-journald journalctl; do
  command -v "$tool" >/dev/null || { echo "run-tests: $tool is missing (make setup installs it)" >&2; exit 1; }
done
# Its own PID namespace too: whatever a failed test leaves running ends with it, and nothing
# outside it (a developer's own journald) can be hit.
[ -n "${AUDITD_TEST_DEB:-}" ] || { echo "run-tests: AUDITD_TEST_DEB is not set (make integration sets it)" >&2; exit 1; }
export AUDITD_TEST_DEB
unshare --mount --pid --fork --mount-proc --propagation private scripts/test-namespace.sh \
  swift test --skip-build --filter IntegrationTests 2>&1 | tee .build/integration-tests.log
scripts/count-tests.sh .build/integration-tests.log integration
