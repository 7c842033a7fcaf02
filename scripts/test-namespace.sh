#!/usr/bin/env bash
# Runs its arguments in a private mount namespace prepared for a private systemd-journald:
# a tmpfs over /run/systemd/journal (where libsystemd always sends) and a fresh folder over
# /run/log/journal and /var/log/journal (where journald writes). The tests start and stop
# journald themselves and read it back with `journalctl -D "$AUDITD_TEST_JOURNAL_DIR"`.
# Called by scripts/run-tests.sh as: unshare --mount --propagation private scripts/test-namespace.sh CMD...
set -euo pipefail
journal=$(mktemp -d /tmp/auditd-journal.XXXXXX)
mkdir -p /run/systemd/journal /run/log/journal /var/log/journal
mount -t tmpfs -o mode=0755 tmpfs /run/systemd/journal
mount --bind "$journal" /run/log/journal
mount --bind "$journal" /var/log/journal
export AUDITD_TEST_JOURNAL_DIR=$journal
status=0
"$@" || status=$?
pkill -TERM -f '^/lib/systemd/systemd-journald$' 2>/dev/null || true
rm -rf "$journal"
exit $status
