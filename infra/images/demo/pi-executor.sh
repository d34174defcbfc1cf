#!/bin/sh
# pi-executor.sh DRIVER_URL EXECUTOR_ID: one executor of the Pi demo.
#
# Like a Spark executor, it asks its driver for tasks until the driver says the
# job is done. A task is one slice [start, end) of the n intervals of the midpoint
# rule for pi = integral over [0, 1] of 4 / (1 + x^2) dx; the executor computes
# the slice's partial sum with awk and posts it back to the driver. The driver
# listens on the host's loopback (executors run with NetworkMode host). Applets
# are called as `busybox <applet>`, so the script runs unchanged in the flint-demo
# image and, on the process runtime, on a host with busybox-static.
#
# Like a Spark executor it also heartbeats (Executor.reportHeartBeat) when its
# application turned heartbeats on: every FLINT_HEARTBEAT_INTERVAL_MS, the first
# after a random one to two intervals, it POSTs {"metrics": {"slices": n}} to
# FLINT_HEARTBEAT_URL with its own token; after FLINT_HEARTBEAT_MAX_FAILURES failed
# beats in a row it stops and exits with FLINT_HEARTBEAT_EXIT_CODE (56, Spark's
# ExecutorExitCode.HEARTBEAT_FAILURE). A silent executor is killed and replaced.
#
# Driver replies to GET /task?executor=ID:
#   "slice <id> <start> <end> <n>"  compute this slice
#   "wait"                          nothing to hand out now; ask again shortly
#   "done"                          every slice is in: exit 0
set -u
driver="${1:?usage: pi-executor.sh DRIVER_URL EXECUTOR_ID}"
id="${2:?usage: pi-executor.sh DRIVER_URL EXECUTOR_ID}"
slices_file="./pi-executor-slices"

# work: ask for slices until the driver says done
work() {
  failures=0
  done_slices=0
  while :; do
    if ! task="$(busybox wget -q -O - "$driver/task?executor=$id")"; then
      failures=$((failures + 1))
      # the driver is gone (or not up yet): give up after about 10 s
      [ "$failures" -ge 50 ] && { echo "executor $id: driver $driver unreachable" >&2; exit 3; }
      busybox sleep 0.2
      continue
    fi
    failures=0
    set -- $task
    case "${1:-}" in
      done) echo "executor $id: driver says done"; exit 0 ;;
      wait) busybox sleep 0.2; continue ;;
      slice) ;;
      *) echo "executor $id: unexpected task '$task'" >&2; exit 4 ;;
    esac
    slice="$2" start="$3" end="$4" n="$5"
    sum="$(busybox awk -v s="$start" -v e="$end" -v n="$n" 'BEGIN {
      h = 1 / n; t = 0
      for (i = s; i < e; i++) { x = (i + 0.5) * h; t += 4 / (1 + x * x) }
      printf "%.17g", t * h
    }')"
    echo "executor $id: slice $slice [$start, $end) of $n -> $sum"
    if ! busybox wget -q -O - --post-data "slice=$slice&executor=$id&start=$start&end=$end&sum=$sum" "$driver/result" >/dev/null; then
      echo "executor $id: could not report slice $slice" >&2
    fi
    done_slices=$((done_slices + 1))
    echo "$done_slices" >"$slices_file.tmp" && busybox mv "$slices_file.tmp" "$slices_file"
  done
}

beat_url="${FLINT_HEARTBEAT_URL:-}"
if [ -z "$beat_url" ]; then
  work
  exit $?
fi

beat_token="${FLINT_HEARTBEAT_TOKEN:?FLINT_HEARTBEAT_TOKEN is missing}"
interval_ms="${FLINT_HEARTBEAT_INTERVAL_MS:-10000}"
max_failures="${FLINT_HEARTBEAT_MAX_FAILURES:-60}"
exit_code="${FLINT_HEARTBEAT_EXIT_CODE:-56}"
seconds() { busybox awk -v ms="$1" 'BEGIN { printf "%.3f", ms / 1000 }'; }
interval="$(seconds "$interval_ms")"
# Spark's first heartbeat comes after a random delay of one to two intervals
first="$(busybox awk -v ms="$interval_ms" -v seed="$id$$" 'BEGIN { srand(seed); printf "%.3f", ms * (1 + rand()) / 1000 }')"
# one beat may take at most one interval (at least a second)
beat_timeout="$(busybox awk -v ms="$interval_ms" 'BEGIN { t = int(ms / 1000); if (t < 1) t = 1; print t }')"

work &
worker_pid=$!
trap 'kill "$worker_pid" 2>/dev/null; exit 143' TERM INT HUP

# wait_or_finish SECONDS: sleep, but leave (with the work's status) as soon as the work is over
wait_or_finish() {
  busybox sleep "$1"
  if ! kill -0 "$worker_pid" 2>/dev/null; then
    wait "$worker_pid"
    exit $?
  fi
}

wait_or_finish "$first"
beat_failures=0
while :; do
  slices_done="$(busybox cat "$slices_file" 2>/dev/null || echo 0)"
  case "$slices_done" in '' | *[!0-9]*) slices_done=0 ;; esac
  if busybox timeout "$beat_timeout" busybox wget -q -O /dev/null --header "Authorization: Bearer $beat_token" \
    --header 'Content-Type: application/json' --post-data "{\"metrics\":{\"slices\":$slices_done}}" "$beat_url" 2>/dev/null; then
    beat_failures=0
  else
    beat_failures=$((beat_failures + 1))
    echo "executor $id: heartbeat $beat_failures of $max_failures failed" >&2
    if [ "$beat_failures" -ge "$max_failures" ]; then
      echo "executor $id: exiting: unable to send heartbeats to the driver more than $max_failures times" >&2
      kill "$worker_pid" 2>/dev/null
      wait "$worker_pid" 2>/dev/null
      exit "$exit_code"
    fi
  fi
  wait_or_finish "$interval"
done
