#!/bin/sh
# pi-ledger.sh MODE STATE_DIR [...]: the Pi demo driver's slice ledger, kept as
# files in STATE_DIR so that the driver loop and the CGI processes busybox httpd
# forks for each executor request share it without a server of their own.
#
#   init STATE SLICES INTERVALS CLAIM_TIMEOUT  cut [0, INTERVALS) into SLICES ranges
#   task STATE    CGI for GET /task?executor=ID  -> "slice <id> <start> <end> <n>" | "wait" | "done"
#   result STATE  CGI for POST /result (form: slice, executor, start, end, sum) -> accepted | duplicate
#   count STATE   prints how many slices have a result
#   finish STATE  from now on, once every slice has a result, executors are told "done"
#   total STATE   prints the sum of the partial sums in slice order, then one line per executor
#
# Every slice is counted exactly once, whichever executors die:
#   - a claim is `mkdir claims/<id>` (atomic: one executor wins), with its holder
#     and the time in claims/<id>/holder;
#   - a result is `ln <tmp> results/<id>` (atomic and exclusive: the first report
#     of the slice's exact range wins; later ones are duplicates and not counted);
#   - a claim without a result for more than CLAIM_TIMEOUT seconds is handed out again,
#     under the lock claims/<id>.relock so that only one request reassigns it.
# Only busybox applets (called as `busybox <applet>`) and shell builtins are used,
# so the same file runs inside the flint-demo image and on a Debian host.
set -u

fail() {
  echo "pi-ledger: $*" >&2
  exit 1
}

# reply STATUS TEXT: a CGI response (busybox httpd turns "Status:" into the status line)
reply() {
  if [ "$1" = 200 ]; then
    printf 'Content-Type: text/plain\r\n\r\n%s\n' "$2"
  else
    printf 'Status: %s\r\nContent-Type: text/plain\r\n\r\n%s\n' "$1" "$2"
  fi
  exit 0
}

is_count() {
  case "$1" in '' | *[!0-9]*) return 1 ;; esac
  [ "${#1}" -le 12 ]
}

count_results() {
  n=0
  for f in "$state"/results/*; do
    [ -e "$f" ] && n=$((n + 1))
  done
  echo "$n"
}

mode="${1:-}"
state="${2:-}"
[ -n "$state" ] || fail "usage: pi-ledger.sh init|task|result|count|total|finish STATE_DIR ..."

if [ "$mode" = init ]; then
  slices="${3:-}" intervals="${4:-}" claim_timeout="${5:-}"
  is_count "$slices" && [ "$slices" -ge 1 ] || fail "slices must be a positive integer, got '$slices'"
  is_count "$intervals" && [ "$intervals" -ge "$slices" ] || fail "intervals must be an integer of at least $slices (the slices), got '$intervals'"
  is_count "$claim_timeout" && [ "$claim_timeout" -ge 1 ] || fail "the claim timeout must be a positive number of seconds, got '$claim_timeout'"
  busybox mkdir -p "$state/slices" "$state/claims" "$state/results" "$state/seen" "$state/told" || fail "cannot create $state"
  printf 'slices=%s\nintervals=%s\nclaim_timeout=%s\n' "$slices" "$intervals" "$claim_timeout" >"$state/config"
  # slice i is [start, end): sizes differ by at most one, and together they cover [0, intervals)
  busybox awk -v n="$intervals" -v k="$slices" -v dir="$state/slices" 'BEGIN {
    base = int(n / k); extra = n % k; start = 0
    for (i = 0; i < k; i++) { end = start + base + (i < extra ? 1 : 0); print start, end > (dir "/" i); close(dir "/" i); start = end }
  }' || fail "cannot write the slices"
  exit 0
fi

[ -r "$state/config" ] || fail "$state is not an initialised ledger"
# shellcheck disable=SC1091 # written by init: three integers
. "$state/config"

case "$mode" in
count)
  count_results
  ;;

total)
  [ "$(count_results)" -eq "$slices" ] || fail "only $(count_results) of $slices slices have a result"
  i=0
  while [ "$i" -lt "$slices" ]; do
    busybox cat "$state/results/$i"
    i=$((i + 1))
  done | busybox awk '
    { total += $1; by[$2]++ }
    END {
      printf "%.15f\n", total
      for (e in by) print e, by[e]
    }'
  ;;

finish)
  : >"$state/finished"
  ;;

task)
  query="${QUERY_STRING:-}"
  executor="${query#executor=}"
  is_count "$executor" && [ "executor=$executor" = "$query" ] || reply '400 Bad Request' 'use GET /task?executor=<executor id>'
  : >"$state/seen/$executor"
  if [ "$(count_results)" -ge "$slices" ]; then
    # "done" only once the driver says so: it first asks for no more executors, so that
    # the master does not replace the executors that exit
    [ -e "$state/finished" ] || reply 200 wait
    : >"$state/told/$executor"
    reply 200 done
  fi
  now="$(busybox date +%s)"
  i=0
  while [ "$i" -lt "$slices" ]; do
    if [ ! -e "$state/results/$i" ]; then
      if busybox mkdir "$state/claims/$i" 2>/dev/null; then
        echo "$executor $now" >"$state/claims/$i/holder"
        read -r start end <"$state/slices/$i"
        reply 200 "slice $i $start $end $intervals"
      fi
      # held by someone: hand it out again if the holder has been silent too long
      holder="" since=""
      read -r holder since 2>/dev/null <"$state/claims/$i/holder"
      judged="$holder $since"
      # the clock has one-second steps, so a difference of exactly CLAIM_TIMEOUT may be
      # a few milliseconds of real time: only a larger one proves the holder silent long enough
      if is_count "$since" && [ $((now - since)) -gt "$claim_timeout" ] && busybox mkdir "$state/claims/$i.relock" 2>/dev/null; then
        # re-check under the lock that the claim is still the one judged stale (compare and
        # swap): another request may have reassigned it a moment ago
        read -r holder since 2>/dev/null <"$state/claims/$i/holder"
        if [ ! -e "$state/results/$i" ] && [ "$holder $since" = "$judged" ]; then
          echo "$executor $now" >"$state/claims/$i/holder.tmp" && busybox mv -f "$state/claims/$i/holder.tmp" "$state/claims/$i/holder"
          busybox rmdir "$state/claims/$i.relock"
          echo "slice $i: no result from executor $holder within ${claim_timeout}s; handed to executor $executor" >&2
          read -r start end <"$state/slices/$i"
          reply 200 "slice $i $start $end $intervals"
        fi
        busybox rmdir "$state/claims/$i.relock"
      fi
    fi
    i=$((i + 1))
  done
  reply 200 wait
  ;;

result)
  length="${CONTENT_LENGTH:-0}"
  is_count "$length" && [ "$length" -le 1024 ] || reply '413 Payload Too Large' 'a result is at most 1024 bytes'
  form="$(busybox head -c "$length")"
  # slice executor start end sum, or nothing when a field is missing or malformed
  fields="$(printf '%s\n' "$form" | busybox awk -F'&' '
    {
      for (i = 1; i <= NF; i++) { eq = index($i, "="); if (eq > 1) v[substr($i, 1, eq - 1)] = substr($i, eq + 1) }
      split("slice executor start end", names, " ")
      for (j = 1; j <= 4; j++) if (v[names[j]] !~ /^[0-9]+$/ || length(v[names[j]]) > 12) exit
      if (v["sum"] !~ /^[-+]?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$/ || length(v["sum"]) > 40) exit
      print v["slice"], v["executor"], v["start"], v["end"], v["sum"]
    }')"
  set -- $fields
  [ "$#" -eq 5 ] || reply '400 Bad Request' 'invalid result: expected integers slice, executor, start, end and a number sum'
  slice="$1" executor="$2" start="$3" end="$4" sum="$5"
  [ "$slice" -lt "$slices" ] || reply '400 Bad Request' "invalid result: there is no slice $slice"
  read -r want_start want_end <"$state/slices/$slice"
  [ "$start $end" = "$want_start $want_end" ] || reply '400 Bad Request' "invalid result: slice $slice is [$want_start, $want_end), not [$start, $end)"
  tmp="$state/results/.$slice.$executor.$$"
  echo "$sum $executor" >"$tmp"
  if busybox ln "$tmp" "$state/results/$slice" 2>/dev/null; then
    outcome=accepted
  else
    outcome=duplicate
  fi
  busybox rm -f "$tmp"
  reply 200 "$outcome"
  ;;

*)
  fail "unknown mode '$mode': use init, task, result, count, total or finish"
  ;;
esac
