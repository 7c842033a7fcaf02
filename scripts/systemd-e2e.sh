#!/usr/bin/env bash
# The Debian package under a real systemd: boots a debootstrapped Debian 12 with
# systemd-nspawn (systemd as PID 1; the host's network, so the simulator on the host's
# loopback is reachable) and runs scripts/systemd-e2e-runner.sh in it, which installs the
# package and does what an operator does on the first day and on the day of an upgrade.
# Then checks the runner's results and, from the container's journal (journalctl -D), that
# every identifier holds every event the simulator served, once.
#
# Usage: scripts/systemd-e2e.sh DEB
# The debootstrapped tree is cached in $AUDITD_E2E_CACHE (default /var/cache/openai-auditd-test;
# about 240 MB, made once in about a minute); each run boots a fresh copy of it.
set -euo pipefail
cd "$(dirname "$0")/.."
deb=${1:?usage: scripts/systemd-e2e.sh DEB}
cache=${AUDITD_E2E_CACHE:-/var/cache/openai-auditd-test}/bookworm
mirror=${AUDITD_E2E_MIRROR:-http://deb.debian.org/debian}
key=sk-admin-simulator-0000000000000000
history=40
[ "$(id -u)" -eq 0 ] || { echo "systemd-e2e: needs root (debootstrap, systemd-nspawn)" >&2; exit 1; }
for tool in debootstrap systemd-nspawn journalctl dpkg-deb python3; do
  command -v "$tool" >/dev/null || { echo "systemd-e2e: $tool is missing (make setup installs it)" >&2; exit 1; }
done

if [ ! -d "$cache" ]; then
  echo "systemd-e2e: debootstrapping Debian 12 into $cache (once, about a minute)"
  rm -rf "$cache.tmp" && mkdir -p "$(dirname "$cache")"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,libstdc++6,zlib1g \
    bookworm "$cache.tmp" "$mirror" >/dev/null
  mv "$cache.tmp" "$cache"
fi

work=$(mktemp -d /var/tmp/auditd-e2e.XXXXXX)
simulator=
nspawn=
cleanup() {
  for pid in $nspawn $simulator; do kill "$pid" 2>/dev/null && { wait "$pid" 2>/dev/null || true; }; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
root=$work/root
cp -a "$cache" "$root"
e2e=$root/root/e2e
mkdir -p "$e2e" "$root/var/log/journal"

# The package, and a newer build of it (the same files under a higher version) to upgrade to.
cp "$deb" "$e2e/openai-auditd.deb"
version=$(dpkg-deb -f "$deb" Version)
newer=$version+e2e1
dpkg-deb -R "$deb" "$work/newer"
sed -i "s/^Version: .*/Version: $newer/" "$work/newer/DEBIAN/control"
dpkg-deb -b "$work/newer" "$e2e/openai-auditd-newer.deb" >/dev/null

.build/debug/openai-audit-sim --port 0 --port-file "$work/port" --admin-key "$key" --history "$history" \
  --history-span 3600 2>"$work/simulator.log" &
simulator=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || { echo "systemd-e2e: the simulator did not start" >&2; cat "$work/simulator.log" >&2; exit 1; }
port=$(cat "$work/port")
printf 'PORT=%s\nKEY=%s\nHISTORY=%s\nNEWER_VERSION=%s\n' "$port" "$key" "$history" "$newer" >"$e2e/env"

install -m 0755 scripts/systemd-e2e-runner.sh "$e2e/runner.sh"
cat >"$root/etc/systemd/system/auditd-e2e.service" <<'UNIT'
[Unit]
Description=openai-auditd end-to-end checks (scripts/systemd-e2e-runner.sh)
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/root/e2e/runner.sh
StandardOutput=journal
StandardError=journal
UNIT
mkdir -p "$root/etc/systemd/system/default.target.wants"
ln -s /etc/systemd/system/auditd-e2e.service "$root/etc/systemd/system/default.target.wants/auditd-e2e.service"

echo "systemd-e2e: booting the container (simulator on 127.0.0.1:$port)"
started=$SECONDS
status=0
timeout 900 systemd-nspawn -D "$root" --register=no --keep-unit -b --quiet >"$work/console.log" 2>&1 &
nspawn=$!
wait "$nspawn" || status=$?
nspawn=
echo "systemd-e2e: the container ran $((SECONDS - started)) s (nspawn exit $status)"

results=$e2e/results
failed=0
if [ ! -f "$results" ]; then
  echo "systemd-e2e: FAIL the runner wrote no results" >&2
  tail -30 "$work/console.log" >&2
  failed=1
else
  sed 's/^/systemd-e2e: /' "$results" | grep -v -e ' DONE$' -e ' EVENTS '
  grep -q '^DONE$' "$results" || { echo "systemd-e2e: FAIL the runner did not finish" >&2; failed=1; }
  grep -q '^FAIL ' "$results" && failed=1
fi

# The host's own reading of the container's journal: each identifier's events, each once.
expected=$(curl -s "http://127.0.0.1:$port/_sim/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["events"])')
for identifier in openai-audit openai-audit-b openai-audit-c openai-audit-m; do
  read -r distinct total < <(journalctl -D "$root/var/log/journal" -q -t "$identifier" -o export \
    --output-fields=OPENAI_AUDIT_ID | grep -a '^OPENAI_AUDIT_ID=' | sort | awk '{ n++; if ($0 != last) d++; last = $0 } END { print d + 0, n + 0 }')
  if [ "$distinct" = "$expected" ] && [ "$total" = "$expected" ]; then
    echo "systemd-e2e: PASS the container's journal (read on the host): $identifier holds all $expected events once"
  else
    echo "systemd-e2e: FAIL the container's journal: $identifier holds $distinct distinct of $expected, $total entries" >&2
    failed=1
  fi
done

if [ "$failed" -ne 0 ]; then
  echo "systemd-e2e: the runner's trace and the units' journal follow" >&2
  cat "$e2e/trace" >&2 2>/dev/null || true
  journalctl -D "$root/var/log/journal" -q -u openai-auditd -u 'openai-auditd@*' -u auditd-e2e --no-pager | tail -60 >&2
  exit 1
fi
echo "systemd-e2e: $(grep -c '^PASS ' "$results") checks in the container and 4 on its journal passed"
