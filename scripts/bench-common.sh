# Helpers shared by scripts/bench.sh and scripts/bench-idle.sh (sourced; each sets `work`,
# its own folder under .build, first).

key=sk-admin-simulator-0000000000000000
export OPENAI_ADMIN_KEY=$key

start_simulator() { # $1 = events, $2 = seconds they span (default 30 days), then more simulator options
  local events=$1 span=${2:-2592000}
  shift $(($# < 2 ? $# : 2))
  rm -f "$work/port"
  .build/release/openai-audit-sim --port 0 --port-file "$work/port" --admin-key "$key" \
    --history "$events" --history-span "$span" --tricky-rate 0.05 "$@" 2>"$work/simulator.log" &
  simulator=$!
  await_port "$work/port" "$work/simulator.log" "simulator"
}
await_port() { # $1 = the port file a server writes, $2 = its log, $3 = what it is; sets `port`
  for _ in $(seq 600); do [ -s "$1" ] && break; sleep 0.1; done
  [ -s "$1" ] || { echo "bench: $3 did not start" >&2; cat "$2" >&2; exit 1; }
  port=$(cat "$1")
}
stop_simulator() { kill "${simulator:-}" 2>/dev/null || true; wait "${simulator:-}" 2>/dev/null || true; }

field() { # $1 = time -v output, $2 = label
  grep -F "$2" "$1" | head -1 | awk -F': ' '{print $2}'
}
cpu_seconds() { # $1 = time -v output: user + system seconds
  awk -v u="$(field "$1" "User time")" -v s="$(field "$1" "System time")" 'BEGIN{print u+s}'
}
seconds() { # h:mm:ss or m:ss.ss -> seconds
  awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }' <<<"$1"
}
# A count from a server's stats ($1: its stats URL; $2: the count, default "requests": the audit
# log requests served so far).
served() { curl -sf "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['${2:-requests}'])"; }
