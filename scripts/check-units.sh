#!/usr/bin/env bash
# Checks the packaged units offline: `systemd-analyze verify` must say nothing (it prints
# warnings but exits 0, so any output fails), and `systemd-analyze security --offline=yes`
# must rate both at 2.0 or lower. The units are verified inside a scratch root that holds
# the built binary at /usr/bin/openai-auditd and a copy of the system's unit files.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-.build/debug/openai-auditd}
root=$(mktemp -d /tmp/auditd-units.XXXXXX)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/bin" "$root/bin" "$root/etc/systemd/system" "$root/lib/systemd"
cp "$binary" "$root/usr/bin/openai-auditd"
cp /bin/sh "$root/bin/sh"
cp -r /lib/systemd/system "$root/lib/systemd/"
cp packaging/openai-auditd.service packaging/openai-auditd@.service "$root/etc/systemd/system/"
status=0
for unit in openai-auditd.service openai-auditd@example.service; do
  output=$(cd "$root" && systemd-analyze verify --man=no --root="$root" "etc/systemd/system/$unit" 2>&1) || status=1
  if [ -n "$output" ]; then
    echo "check-units: systemd-analyze verify $unit:" >&2
    echo "$output" >&2
    status=1
  fi
  if ! exposure=$(systemd-analyze security --offline=yes --root="$root" --threshold=20 "$unit" 2>&1 | tail -1); then
    echo "check-units: $unit is above the exposure threshold of 2.0: $exposure" >&2
    status=1
  fi
  echo "check-units: $unit verified; ${exposure#→ }"
done
exit $status
