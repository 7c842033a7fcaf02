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
pkill -TERM -f '^/lib/systemd/systemd-journald$' 2>/dev/null || true
# An rsyslogd a failed syslog test left behind.
pkill -KILL -f '^/usr/sbin/rsyslogd -n -f /tmp/auditd-rsyslog-' 2>/dev/null || true
rm -rf /tmp/auditd-rsyslog-*
rm -rf "$journal" "$catalog"
exit $status
