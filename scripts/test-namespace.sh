#!/usr/bin/env bash
# Runs its arguments in a private mount namespace prepared for a private systemd-journald:
# a tmpfs over /run/systemd/journal (where libsystemd always sends) and a fresh folder over
# /run/log/journal and /var/log/journal (where journald writes). The tests start and stop
# journald themselves and read it back with `journalctl -D "$AUDITD_TEST_JOURNAL_DIR"`.
# Called by scripts/run-tests.sh as:
#   unshare --mount --pid --fork --mount-proc --propagation private scripts/test-namespace.sh CMD...
# In its own PID namespace this script is process 1: every journald and rsyslogd the tests
# start lives in that namespace, and the kernel ends whatever is left of them when this
# script exits. Nothing is ended by name, so a developer's own journald is never touched.
set -euo pipefail
[ "$$" -eq 1 ] || { echo "test-namespace: run me through unshare --pid --fork (see scripts/run-tests.sh)" >&2; exit 1; }
journal=$(mktemp -d /tmp/auditd-journal.XXXXXX)
mkdir -p /run/systemd/journal /run/log/journal /var/log/journal
mount -t tmpfs -o mode=0755 tmpfs /run/systemd/journal
mount --bind "$journal" /run/log/journal
mount --bind "$journal" /var/log/journal
# The message catalog, installed as the package would (journalctl -x reads the compiled
# database from /var/lib/systemd/catalog, whatever --root says).
catalog=$(mktemp -d /tmp/auditd-catalog.XXXXXX)
mkdir -p "$catalog/usr/lib/systemd/catalog" "$catalog/var/lib/systemd/catalog" /var/lib/systemd/catalog
cp /usr/lib/systemd/catalog/*.catalog "$catalog/usr/lib/systemd/catalog/" 2>/dev/null || true
cp "$(dirname "$0")/../packaging/openai-auditd.catalog" "$catalog/usr/lib/systemd/catalog/"
journalctl --root="$catalog" --update-catalog
mount --bind "$catalog/var/lib/systemd/catalog" /var/lib/systemd/catalog
export AUDITD_TEST_JOURNAL_DIR=$journal
status=0
"$@" || status=$?
# The tests stop what they started; a journald or rsyslogd a failed test left behind is
# ended with this namespace. Their files go now.
rm -rf /tmp/auditd-rsyslog-*
rm -rf "$journal" "$catalog"
exit $status
