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
# Driver replies to GET /task?executor=ID:
#   "slice <id> <start> <end> <n>"  compute this slice
#   "wait"                          nothing to hand out now; ask again shortly
#   "done"                          every slice is in: exit 0
set -u
driver="${1:?usage: pi-executor.sh DRIVER_URL EXECUTOR_ID}"
id="${2:?usage: pi-executor.sh DRIVER_URL EXECUTOR_ID}"
failures=0
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
done
