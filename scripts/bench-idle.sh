#!/usr/bin/env bash
# make bench-idle: DESIGN.md's idle budget, with the release build. One simulator trickles
# events as a quiet organization's audit log does (IDLE_RATE per second, default 0.05: three
# a minute, a tenth of them late). For IDLE_MINUTES (default 24) two daemons (`openai-auditd
# run`) deliver them into files: one at the default 60 s interval, whose CPU-seconds after its
# first half minute are scaled to an hour (budget: under 1 CPU-second per hour); one at a 1 s
# interval, which in 24 minutes polls as often as the other does in a day, with its RSS
# sampled every minute (budget: steady). Each file must hold every id once, and both daemons
# must stop cleanly on SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${IDLE_MINUTES:-24}
rate=${IDLE_RATE:-0.05}
work=.build/bench-idle
rm -rf "$work" && mkdir -p "$work"
# shellcheck source=scripts/bench-common.sh
source scripts/bench-common.sh

pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  stop_simulator
}
trap stop_all EXIT

start_daemon() { # $1 = name, $2 = poll.interval, $3 = log.level; sets `daemon` to its PID
  cat >"$work/$1.yaml" <<YAML
api:
  base_url: http://127.0.0.1:$port/v1
poll:
  interval: $2
  start_at: beginning
state:
  path: $PWD/$work/$1.state.json
sinks:
  - type: file
    path: $PWD/$work/$1.jsonl
log:
  level: $3
YAML
  .build/release/openai-auditd run --config "$work/$1.yaml" 2>"$work/$1.log" &
  daemon=$!
  pids+=("$daemon")
}
alive() {
  for pid in "$minute" "$second"; do
    kill -0 "$pid" 2>/dev/null || { echo "bench-idle: a daemon exited early; see $work/*.log" >&2; tail -3 "$work"/*.log >&2; exit 1; }
  done
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user + system, in clock ticks
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
cycles() { grep -c 'cycle finished' "$work/$1.log" || true; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
start_simulator 0 86400 --trickle "$rate"
start_daemon minute 60s info
minute=$daemon
# The 1 s daemon logs every cycle (debug) so that its cycles can be counted.
start_daemon second 1s debug
second=$daemon

sleep 30
alive
start_ticks=$(ticks "$minute")
echo "idle for $minutes minutes, $rate events/s trickled; RSS every minute (MB):"
rss_series=()
for m in $(seq "$minutes"); do
  sleep 60
  alive
  rss_series+=("$(rss_kb "$second")")
  awk -v m="$m" -v s="${rss_series[-1]}" -v n="$(cycles second)" -v r="$(rss_kb "$minute")" 'BEGIN {
    printf "  minute %3d: 1 s daemon %.1f after %d cycles; 60 s daemon %.1f\n", m, s/1024, n, r/1024 }'
done
end_ticks=$(ticks "$minute")
second_cycles=$(cycles second)

for pid in "$minute" "$second"; do
  kill -TERM "$pid"
  status=0
  wait "$pid" || status=$?
  [ "$status" = 0 ] || { echo "bench-idle: a daemon exited $status on SIGTERM; see $work/*.log" >&2; exit 1; }
done
pids=()
held=$(served "http://127.0.0.1:$port/_sim/stats" events)
stop_simulator

# Every id once in each file; the 1 s daemon holds what the 60 s one does.
python3 - "$work/minute.jsonl" "$work/second.jsonl" "$held" <<'PY'
import json, sys
ids = {}
for path in sys.argv[1:3]:
    with open(path) as lines:
        listed = [json.loads(line)["id"] for line in lines]
    if len(listed) != len(set(listed)):
        sys.exit(f"bench-idle: {path} holds {len(listed) - len(set(listed))} ids twice")
    ids[path] = set(listed)
minute, second = ids[sys.argv[1]], ids[sys.argv[2]]
if not minute <= second:
    sys.exit(f"bench-idle: {len(minute - second)} ids the 60 s daemon delivered are missing from the 1 s one")
print(f"delivered, every id once: 60 s daemon {len(minute)}, 1 s daemon {len(second)}, of {sys.argv[3]} the simulator held")
PY

awk -v t="$((end_ticks - start_ticks))" -v hz="$(getconf CLK_TCK)" -v m="$minutes" -v n="$second_cycles" \
    -v series="${rss_series[*]}" 'BEGIN {
  cpu = t / hz
  printf "60 s interval: %.2f CPU-s in %d minutes after the first half minute, %.2f CPU-s per hour (budget: under 1)\n", cpu, m, cpu * 60 / m
  k = split(series, r, " ")
  low = r[1]; high = r[1]
  for (i = 2; i <= k; i++) { if (r[i] < low) low = r[i]; if (r[i] > high) high = r[i] }
  printf "1 s interval: %d cycles (a day at 60 s is 1440); RSS %.1f MB after the first minute, %.1f MB after the last, %.1f-%.1f MB throughout (%+.0f KB per 1,000 cycles)\n", n, r[1]/1024, r[k]/1024, low/1024, high/1024, (r[k] - r[1]) * 1000 / n
}'
