#!/usr/bin/env bash
# make demo: start the simulator with an hour of history and a trickle of new (and some
# late) events, then run the daemon against it with events on stdout. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
work=.build/demo
rm -rf "$work" && mkdir -p "$work"
key=sk-admin-simulator-0000000000000000

.build/debug/openai-audit-sim --port 0 --port-file "$work/port" --admin-key "$key" \
  --history 300 --history-span 3600 --trickle 2 --tricky-rate 0.1 2>"$work/simulator.log" &
simulator=$!
trap 'kill $simulator 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || { echo "demo: the simulator did not start:" >&2; cat "$work/simulator.log" >&2; exit 1; }
port=$(cat "$work/port")
echo "demo: simulator on http://127.0.0.1:$port/v1; daemon events follow on stdout, its log on stderr (Ctrl-C to stop)" >&2

export OPENAI_ADMIN_KEY=$key
export OPENAI_AUDITD_API_BASE_URL="http://127.0.0.1:$port/v1"
if [ -n "${DEMO_SECONDS:-}" ]; then
  .build/debug/openai-auditd run --config config/demo.yaml &
  daemon=$!
  sleep "$DEMO_SECONDS"
  kill -TERM $daemon
  wait $daemon
else
  .build/debug/openai-auditd run --config config/demo.yaml
fi
