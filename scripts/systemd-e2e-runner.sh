#!/bin/bash
# Runs inside the container scripts/systemd-e2e.sh boots (systemd as PID 1), as the oneshot
# unit auditd-e2e.service, and does what an operator does with the package on the first day
# and on the day of an upgrade. Each check appends "PASS name" or "FAIL name: why" to
# /root/e2e/results; the last line is "DONE". The host then reads that file and this
# container's journal. The simulator runs on the host's loopback (shared network).
set -u
e2e=/root/e2e
# shellcheck source=/dev/null
. "$e2e/env" # PORT, KEY, HISTORY
results=$e2e/results
: >"$results"
unit=openai-auditd
posted=0

pass() { echo "PASS $1" >>"$results"; }
fail() { echo "FAIL $1: $2" >>"$results"; }
note() { echo "$(date +%T) $*" >>"$e2e/trace"; }
prop() { systemctl show -p "$2" --value "$1"; }
# Polls a command until it succeeds or $1 seconds pass.
wait_for() {
  local seconds=$1
  shift
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}
# The audit ids an identifier's journal entries carry: all, and those seen more than once.
ids() { journalctl -q -t "$1" -o export --output-fields=OPENAI_AUDIT_ID | grep -a '^OPENAI_AUDIT_ID=' | sort; }
unique() { ids "$1" | uniq | wc -l; }
repeated() { ids "$1" | uniq -d | wc -l; }
has_all() { [ "$(unique "$1")" -ge $((HISTORY + posted)) ]; }
# Adds $1 events stamped in the last half minute, through the simulator's control interface.
post() {
  local now body
  now=$(date +%s)
  body="{\"count\":$1,\"from\":$((now - 30)),\"to\":$((now - 1))}"
  exec 3<>"/dev/tcp/127.0.0.1/$PORT"
  printf 'POST /_sim/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
    "${#body}" "$body" >&3
  cat <&3 >/dev/null
  exec 3>&-
  posted=$((posted + $1))
}
# Every event so far in the identifier's journal, each once.
complete() { # name identifier
  if wait_for 60 has_all "$2" && [ "$(repeated "$2")" -eq 0 ]; then
    pass "$1"
  else
    fail "$1" "$(unique "$2") distinct of $((HISTORY + posted)), $(repeated "$2") repeated in $2"
  fi
}
active() { [ "$(prop "$1" ActiveState)" = active ]; }

note "install"
if apt-get install -y -q "$e2e/openai-auditd.deb" >"$e2e/apt.log" 2>&1; then
  pass "apt-get install ./openai-auditd.deb"
else
  fail "apt-get install" "$(tail -3 "$e2e/apt.log")"
fi

# The key as the credential the unit loads, and the configuration pointed at the simulator.
install -m 0600 /dev/null /etc/openai-auditd/admin-key
printf '%s\n' "$KEY" >/etc/openai-auditd/admin-key
sed -i -e "s|base_url: https://api.openai.com/v1|base_url: http://127.0.0.1:$PORT/v1|" \
  -e 's|  interval: 60s|  interval: 2s|' -e 's|  start_at: now|  start_at: -1d|' /etc/openai-auditd/config.yaml

# An instance of the template running the way 0.1.0's template laid out its state
# (StateDirectory=openai-auditd/%i, emulated by a drop-in) before the plain unit ever ran;
# then the package is installed again: its postinst moves that state beside the plain unit's,
# with the instance stopped and started again.
note "old layout"
sed 's/identifier: openai-audit /identifier: openai-audit-m /' /etc/openai-auditd/config.yaml >/etc/openai-auditd/m.yaml
# Each unit serves metrics on its own port (the packaged configuration's 9786 goes to the plain one).
sed -i 's|listen: 127.0.0.1:9786|listen: 127.0.0.1:9791|' /etc/openai-auditd/m.yaml
install -m 0600 /etc/openai-auditd/admin-key /etc/openai-auditd/m.admin-key
mkdir -p /etc/systemd/system/openai-auditd@m.service.d
printf '[Service]\nStateDirectory=\nStateDirectory=openai-auditd/%%i\n' \
  >/etc/systemd/system/openai-auditd@m.service.d/old-layout.conf
systemctl daemon-reload
systemctl start openai-auditd@m
wait_for 60 has_all openai-audit-m
old_state=$([ -f /var/lib/private/openai-auditd/m/state.json ] && echo yes || echo no)
rm -r /etc/systemd/system/openai-auditd@m.service.d
apt-get install -y -q --reinstall "$e2e/openai-auditd.deb" >"$e2e/apt-reinstall.log" 2>&1
if [ "$old_state" = yes ] && active openai-auditd@m && [ -f /var/lib/private/openai-auditd-m/state.json ] &&
  [ ! -e /var/lib/private/openai-auditd ] && [ ! -e /var/lib/openai-auditd ] &&
  grep -q 'moved the state of openai-auditd@m' "$e2e/apt-reinstall.log"; then
  pass "an instance's state in 0.1.0's layout is moved beside the plain unit's by the package, the instance restarted"
else
  fail "state migration" "old state there before: $old_state; $(tail -2 "$e2e/apt-reinstall.log" | tr '\n' ' '); $(ls -la /var/lib/private /var/lib 2>&1 | grep openai | tr '\n' ' ')"
fi

note "enable --now"
started=$SECONDS
if systemctl enable --now "$unit" >"$e2e/enable.log" 2>&1 && active "$unit"; then
  pass "systemctl enable --now returns with the unit active (READY=1), $((SECONDS - started)) s"
else
  fail "systemctl enable --now" "$(prop "$unit" ActiveState) $(tail -3 "$e2e/enable.log")"
fi
complete "every served event in the journal once" openai-audit
one=$(ids openai-audit | head -1 | cut -d= -f2)
if [ -n "$one" ] && [ "$(journalctl -q -o cat OPENAI_AUDIT_ID="$one" | wc -l)" -ge 1 ] &&
  [ "$(journalctl -q -t openai-audit OPENAI_EVENT_TYPE="$(journalctl -q -o export --output-fields=OPENAI_EVENT_TYPE OPENAI_AUDIT_ID="$one" | grep -a '^OPENAI_EVENT_TYPE=' | head -1 | cut -d= -f2)" | wc -l)" -ge 1 ]; then
  pass "journalctl OPENAI_AUDIT_ID=… and OPENAI_EVENT_TYPE=… find the entries"
else
  fail "journal fields" "no entry for OPENAI_AUDIT_ID=$one"
fi
if systemctl status "$unit" --no-pager 2>&1 | grep -q 'Status: "delivered'; then
  pass "systemctl status shows the STATUS line"
else
  fail "status line" "$(systemctl status "$unit" --no-pager 2>&1 | head -8 | tr '\n' ' ')"
fi

post 3
complete "the moved instance went on from its state: nothing again" openai-audit-m

note "reload"
sed -i 's|  interval: 2s|  interval: 1s|' /etc/openai-auditd/config.yaml
if systemctl reload "$unit" && wait_for 20 sh -c "journalctl -q -u $unit | grep -q 'configuration reloaded.*poll.interval'"; then
  pass "systemctl reload applies a changed interval"
else
  fail "reload" "$(journalctl -q -u "$unit" | tail -3 | tr '\n' ' ')"
fi
post 5
complete "delivering goes on after the reload" openai-audit

note "kill -9"
pid=$(prop "$unit" MainPID)
restarts=$(prop "$unit" NRestarts)
systemctl kill -s SIGKILL --kill-whom=main "$unit"
restarted() { [ "$(prop "$unit" NRestarts)" -gt "$restarts" ] && active "$unit" && [ "$(prop "$unit" MainPID)" != "$pid" ]; }
if wait_for 40 restarted; then pass "kill -9 of the main process: restarted"; else fail "kill -9" "not restarted"; fi
post 5
complete "after kill -9 nothing lost, nothing twice" openai-audit

note "watchdog"
mkdir -p /etc/systemd/system/$unit.service.d
printf '[Service]\nWatchdogSec=3s\n' >/etc/systemd/system/$unit.service.d/watchdog.conf
systemctl daemon-reload
systemctl restart "$unit"
pid=$(prop "$unit" MainPID)
restarts=$(prop "$unit" NRestarts)
kill -STOP "$pid"
if wait_for 40 restarted && journalctl -q -u "$unit" | grep -q 'Watchdog timeout'; then
  pass "a stopped process is killed by the watchdog (WatchdogSec=3s) and restarted"
else
  fail "watchdog" "$(journalctl -q -u "$unit" | tail -3 | tr '\n' ' ')"
fi
rm -r /etc/systemd/system/$unit.service.d
systemctl daemon-reload
post 5
complete "after the watchdog nothing lost, nothing twice" openai-audit

note "key rejected"
cp /etc/openai-auditd/admin-key "$e2e/good-key"
printf 'sk-admin-wrong-000000000000000000000\n' >/etc/openai-auditd/admin-key
systemctl restart "$unit" 2>/dev/null
sleep 13 # RestartSec=10s: a restart would have come by now
status_text=$(systemctl status "$unit" --no-pager 2>&1)
# NRestarts counts automatic restarts since the last start by hand (this restart): none.
restarts=0
if [ "$(prop "$unit" ActiveState)" = failed ] && [ "$(prop "$unit" ExecMainStatus)" = 77 ] &&
  [ "$(prop "$unit" NRestarts)" = "$restarts" ] && grep -q '401' <<<"$status_text"; then
  pass "a rejected key (401) exits 77, is not restarted, and systemctl status says why"
else
  fail "key rejected" "$(prop "$unit" ActiveState) $(prop "$unit" ExecMainStatus) restarts $(prop "$unit" NRestarts)/$restarts: $(tail -4 <<<"$status_text" | tr '\n' ' ')"
fi
install -m 0600 "$e2e/good-key" /etc/openai-auditd/admin-key
systemctl reset-failed "$unit"
systemctl start "$unit"

note "template instances"
port=9792
for i in b c; do
  sed -e "s/identifier: openai-audit /identifier: openai-audit-$i /" -e "s|listen: 127.0.0.1:9786|listen: 127.0.0.1:$port|" \
    /etc/openai-auditd/config.yaml >/etc/openai-auditd/$i.yaml
  port=$((port + 1))
  install -m 0600 /etc/openai-auditd/admin-key /etc/openai-auditd/$i.admin-key
done
if systemctl start openai-auditd@b openai-auditd@c && active openai-auditd@b && active openai-auditd@c && active "$unit"; then
  pass "two template instances start beside the plain unit"
else
  fail "template instances" "$(systemctl status 'openai-auditd@*' --no-pager 2>&1 | grep -E 'Active|Main|error' | tr '\n' ' ')"
fi
for i in b c; do complete "instance $i: every event in its own journal identifier once" openai-audit-$i; done
if [ -f /var/lib/private/openai-auditd-b/state.json ] && [ -f /var/lib/private/openai-auditd-c/state.json ] &&
  [ -f /var/lib/private/openai-auditd/state.json ]; then
  pass "each unit has its own state directory"
else
  fail "state directories" "$(ls -R /var/lib/private 2>&1 | tr '\n' ' ')"
fi

# The file sink at the packaged default path (LogsDirectory, read by root), and an agent that
# runs as its own user reading another instance's file through a group: a setgid directory of
# that group, the unit given the group and the directory by a drop-in.
note "file sinks"
file_sink() { # the journald identifier it follows, the path, the configuration file
  sed -i "/identifier: $1 /a\\  - type: file\\n    path: $2" "$3"
}
file_sink openai-audit /var/log/openai-auditd/audit.json /etc/openai-auditd/config.yaml
groupadd --system siem && useradd --system --gid siem --no-create-home siemagent
install -d -o root -g siem -m 2770 /srv/openai-audit
file_sink openai-audit-c /srv/openai-audit/audit.json /etc/openai-auditd/c.yaml
mkdir -p /etc/systemd/system/openai-auditd@c.service.d
printf '[Service]\nSupplementaryGroups=siem\nReadWritePaths=/srv/openai-audit\n' \
  >/etc/systemd/system/openai-auditd@c.service.d/agent.conf
systemctl daemon-reload
systemctl reload "$unit"
systemctl restart openai-auditd@c
sleep 3
post 4
lines() { [ "$(sort -u "$1" 2>/dev/null | wc -l)" -ge 4 ] && [ "$(sort "$1" | uniq -d | wc -l)" -eq 0 ]; }
if wait_for 30 lines /var/log/openai-auditd/audit.json && [ -L /var/log/openai-auditd ] &&
  [ "$(stat -c %a /var/log/private/openai-auditd/audit.json)" = 640 ]; then
  pass "a file sink at /var/log/openai-auditd/audit.json (LogsDirectory, 0640): the new events, each once"
else
  fail "file sink, default path" "$(ls -la /var/log/openai-auditd/ 2>&1 | tr '\n' ' ') $(journalctl -q -u "$unit" | grep -i 'sink' | tail -2 | tr '\n' ' ')"
fi
if wait_for 30 lines /srv/openai-audit/audit.json && [ "$(stat -c '%a %G' /srv/openai-audit/audit.json)" = "640 siem" ] &&
  [ "$(runuser -u siemagent -- sort -u /srv/openai-audit/audit.json | wc -l)" -ge 4 ]; then
  pass "a file sink in a setgid directory of the agent's group (SupplementaryGroups=, ReadWritePaths=): the agent's user reads it"
else
  fail "file sink, agent group" "$(ls -la /srv/openai-audit 2>&1 | tr '\n' ' ') $(journalctl -q -u openai-auditd@c | grep -i 'sink' | tail -2 | tr '\n' ' ')"
fi

note "security"
for u in "$unit.service" openai-auditd@b.service; do
  level=$(systemd-analyze security "$u" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  if [ -n "$level" ] && awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }'; then
    pass "systemd-analyze security $u: $level"
  else
    fail "security $u" "exposure '$level'"
  fi
done

note "upgrade"
pids="$(prop "$unit" MainPID) $(prop openai-auditd@b MainPID)"
if apt-get install -y -q "$e2e/openai-auditd-newer.deb" >"$e2e/apt-upgrade.log" 2>&1 &&
  [ "$(dpkg-query -W -f='${Version}' openai-auditd)" = "$NEWER_VERSION" ]; then
  pass "apt-get install of a newer build"
else
  fail "upgrade" "$(tail -3 "$e2e/apt-upgrade.log")"
fi
if active "$unit" && active openai-auditd@b && [ "$(prop "$unit" MainPID) $(prop openai-auditd@b MainPID)" != "$pids" ] &&
  [ "$(prop "$unit" MainPID)" != "${pids%% *}" ] && grep -q "base_url: http://127.0.0.1:$PORT/v1" /etc/openai-auditd/config.yaml; then
  pass "the upgrade restarted the running units and kept the edited conffile"
else
  fail "upgrade restart" "pids before $pids after $(prop "$unit" MainPID) $(prop openai-auditd@b MainPID)"
fi
post 5
complete "after the upgrade every event once (the state was kept)" openai-audit
for i in b c m; do complete "after the upgrade instance $i every event once" openai-audit-$i; done

note "stop"
started=$SECONDS
systemctl stop "$unit"
if [ "$(prop "$unit" Result)" = success ] && [ "$(prop "$unit" ExecMainStatus)" = 0 ] && ((SECONDS - started < 60)); then
  pass "systemctl stop: result success in $((SECONDS - started)) s"
else
  fail "stop" "$(prop "$unit" Result) $(prop "$unit" ExecMainStatus)"
fi
systemctl stop openai-auditd@b openai-auditd@c openai-auditd@m

note "remove, purge"
apt-get remove -y -q openai-auditd >"$e2e/apt-remove.log" 2>&1
if [ ! -e /lib/systemd/system/openai-auditd.service ] && [ ! -e /usr/lib/systemd/catalog/openai-auditd.catalog ] &&
  [ -f /etc/openai-auditd/config.yaml ] && [ -f /var/lib/private/openai-auditd/state.json ]; then
  pass "remove: units and catalog gone, configuration and state kept"
else
  fail "remove" "$(tail -3 "$e2e/apt-remove.log")"
fi
apt-get purge -y -q openai-auditd >"$e2e/apt-purge.log" 2>&1
if [ ! -e /etc/openai-auditd/config.yaml ] && [ ! -e /etc/logrotate.d/openai-auditd ] &&
  [ -f /var/lib/private/openai-auditd/state.json ] && [ -f /etc/openai-auditd/admin-key ]; then
  pass "purge: conffiles gone, the state and the key kept (as the guide says)"
else
  fail "purge" "$(tail -3 "$e2e/apt-purge.log")"
fi

echo "EVENTS $((HISTORY + posted))" >>"$results"
echo DONE >>"$results"
systemctl poweroff --no-block
