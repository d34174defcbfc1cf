#!/bin/sh
# pi-driver.sh [SLICES] [EXECUTORS] [INTERVALS]: the driver of Flint's SparkPi-like
# demo, submitted in cluster mode: it runs in a flint-demo container on a worker
# (or, on the process runtime, as a local process running this file from the
# repository's infra/images/demo/).
#
# Like SparkPi's driver it
#   1. serves its executors' task endpoint on the host's loopback: busybox httpd on
#      127.0.0.1:<free port> with two CGI scripts written into its work dir, both
#      backed by the slice ledger pi-ledger.sh (exactly-once bookkeeping in files);
#   2. registers the application "Flint Pi" through Flint's application HTTP API
#      ($FLINT_APP_API, bearer token $FLINT_TOKEN with the submit scope), whose
#      executors run pi-executor.sh against that endpoint. The registration is
#      linked to this driver ($FLINT_DRIVER_ID: the app ends when the driver ends),
#      turns on executor heartbeats (Spark's HeartbeatReceiver: a silent executor is
#      replaced), and returns the application's own token, which every later call
#      uses (each such call also renews the application's client lease);
#   3. prints "progress <done>/<slices>" whenever a slice comes in;
#   4. adds the partial sums in slice order, prints "Pi is roughly <value>" and the
#      slices and executors used, asks for no more executors and tells the running
#      ones "done", unregisters the application, stops httpd and exits 0 (the
#      driver ends FINISHED).
# Any failure prints one clear line on stderr, unregisters and exits non-zero.
#
# Environment:
#   FLINT_APP_API             the application HTTP API, e.g. http://127.0.0.1:7077 (required)
#   FLINT_TOKEN               bearer token for it (needed when the cluster has a secret)
#   FLINT_DEMO_DIR            where the executors find pi-executor.sh (default: this file's directory)
#   FLINT_DEMO_BUSYBOX        the busybox binary the executors run (default: the one on PATH)
#   FLINT_DEMO_IMAGE          the executors' image (default flint-demo:latest)
#   FLINT_DEMO_CLAIM_TIMEOUT  seconds before a slice without a result is handed out again (default 20)
#   FLINT_DEMO_TIMEOUT        seconds the whole job may take (default 300)
#   FLINT_DRIVER_ID           this driver's id (set by the worker; links the application to it)
#   FLINT_DEMO_HEARTBEAT_INTERVAL / FLINT_DEMO_NETWORK_TIMEOUT / FLINT_DEMO_TIMEOUT_INTERVAL /
#   FLINT_DEMO_HEARTBEAT_MAX_FAILURES
#                             the application's spark.executor.heartbeatInterval, spark.network.timeout,
#                             spark.network.timeoutInterval, spark.executor.heartbeat.maxFailures
#                             (default 2s, 20s, 5s, 10)
set -u

slices="${1:-16}"
executors="${2:-4}"
intervals="${3:-2000000}"
api="${FLINT_APP_API:-}"
token="${FLINT_TOKEN:-}"
here="$(cd "$(busybox dirname "$0")" && pwd)"
demo_dir="${FLINT_DEMO_DIR:-$here}"
busybox_bin="${FLINT_DEMO_BUSYBOX:-$(busybox which busybox)}"
image="${FLINT_DEMO_IMAGE:-flint-demo:latest}"
claim_timeout="${FLINT_DEMO_CLAIM_TIMEOUT:-20}"
timeout="${FLINT_DEMO_TIMEOUT:-300}"
driver_id="${FLINT_DRIVER_ID:-}"
hb_interval="${FLINT_DEMO_HEARTBEAT_INTERVAL:-2s}"
hb_timeout="${FLINT_DEMO_NETWORK_TIMEOUT:-20s}"
hb_check="${FLINT_DEMO_TIMEOUT_INTERVAL:-5s}"
hb_failures="${FLINT_DEMO_HEARTBEAT_MAX_FAILURES:-10}"
app_token=""
work="$(pwd)"
state="$work/pi-state"
www="$work/pi-www"
httpd_pid=""
app_id=""

# cleanup unregisters the application (the master then stops its executors) and stops httpd
cleanup() {
  if [ -n "$app_id" ]; then
    id="$app_id"
    app_id=""
    api_post "/v1/apps/$id/unregister" '' "$app_token" >/dev/null 2>&1 || echo "pi-driver: could not unregister application $id" >&2
  fi
  if [ -n "$httpd_pid" ]; then
    kill "$httpd_pid" 2>/dev/null
    wait "$httpd_pid" 2>/dev/null
    httpd_pid=""
  fi
}

die() {
  echo "pi-driver: $*" >&2
  cleanup
  exit 1
}

trap 'echo "pi-driver: stopped by a signal" >&2; cleanup; exit 143' TERM INT HUP

is_count() {
  case "$1" in '' | *[!0-9]*) return 1 ;; esac
  [ "${#1}" -le 12 ]
}

# is_plain PATTERN_NAME VALUE: only characters that need no quoting in JSON or sh
is_plain_path() {
  case "$1" in /*) ;; *) return 1 ;; esac
  case "$1" in *[!A-Za-z0-9_./-]*) return 1 ;; esac
}

# api_post PATH DATA [TOKEN]: POST to the application API with TOKEN (default the submit token);
# the reply body on stdout, wget's complaint in $state/api.err
api_post() {
  bearer="${3:-$token}"
  if [ -n "$bearer" ]; then
    busybox timeout 15 busybox wget -q -O - --header "Authorization: Bearer $bearer" --header 'Content-Type: application/json' --post-data "$2" "$api$1" 2>"$state/api.err"
  else
    busybox timeout 15 busybox wget -q -O - --header 'Content-Type: application/json' --post-data "$2" "$api$1" 2>"$state/api.err"
  fi
}

# api_get PATH: GET from the application API with the application's token (which renews its lease)
api_get() {
  busybox timeout 10 busybox wget -q -O - --header "Authorization: Bearer $app_token" "$api$1" 2>"$state/api.err"
}

api_error() {
  busybox tr '\n' ' ' <"$state/api.err" 2>/dev/null
}

count_in() {
  n=0
  for f in "$1"/*; do
    [ -e "$f" ] && n=$((n + 1))
  done
  echo "$n"
}

# --- check the inputs
is_count "$slices" && [ "$slices" -ge 1 ] || die "SLICES must be a positive integer, got '$slices'"
is_count "$executors" && [ "$executors" -ge 1 ] || die "EXECUTORS must be a positive integer, got '$executors'"
is_count "$intervals" && [ "$intervals" -ge "$slices" ] || die "INTERVALS must be an integer of at least SLICES ($slices), got '$intervals'"
is_count "$timeout" && [ "$timeout" -ge 1 ] || die "FLINT_DEMO_TIMEOUT must be a positive number of seconds, got '$timeout'"
case "$api" in http://*) ;; *) die "FLINT_APP_API must be the application API's http:// URL, got '$api'" ;; esac
case "$api" in *[!A-Za-z0-9_.:/\[\]-]*) die "FLINT_APP_API has unexpected characters: '$api'" ;; esac
is_plain_path "$demo_dir" || die "FLINT_DEMO_DIR must be an absolute path of letters, digits and _./-, got '$demo_dir'"
is_plain_path "$busybox_bin" || die "no usable busybox binary (FLINT_DEMO_BUSYBOX='$busybox_bin')"
is_plain_path "$work" || die "the work dir '$work' has characters this driver does not quote"
case "$image" in '' | *[!A-Za-z0-9_.:/@-]*) die "FLINT_DEMO_IMAGE is not an image name: '$image'" ;; esac
case "$driver_id" in *[!A-Za-z0-9_.:@/-]*) die "FLINT_DRIVER_ID is not a driver id: '$driver_id'" ;; esac
for setting in "$hb_interval" "$hb_timeout" "$hb_check" "$hb_failures"; do
  case "$setting" in '' | *[!A-Za-z0-9.]*) die "a heartbeat setting has unexpected characters: '$setting'" ;; esac
done
[ -r "$demo_dir/pi-ledger.sh" ] || die "$demo_dir/pi-ledger.sh is missing"

echo "Flint Pi driver: $slices slices of $intervals intervals, up to $executors executors"

# --- 1. the task endpoint
busybox rm -rf "$state" "$www"
busybox sh "$demo_dir/pi-ledger.sh" init "$state" "$slices" "$intervals" "$claim_timeout" || die "cannot set up the slice ledger in $state"
busybox mkdir -p "$www/cgi-bin" || die "cannot create $www"
for mode in task result; do
  printf '#!/bin/sh\nexec %s sh %s/pi-ledger.sh %s %s\n' "$busybox_bin" "$demo_dir" "$mode" "$state" >"$www/cgi-bin/$mode"
  busybox chmod 755 "$www/cgi-bin/$mode" || die "cannot make the CGI script $www/cgi-bin/$mode executable"
done
nonce="$(busybox od -An -N8 -tx8 /dev/urandom | busybox tr -d ' \n')"
echo "$nonce" >"$www/ping"

attempt=0
port=""
while [ -z "$port" ]; do
  attempt=$((attempt + 1))
  [ "$attempt" -le 20 ] || die "no free loopback port for the task endpoint after 20 tries"
  candidate=$((20000 + $(busybox od -An -N2 -tu2 /dev/urandom | busybox tr -d ' \n') % 40000))
  # httpd's stderr is the driver's: the ledger's notes on reassigned slices land in the driver's log
  busybox httpd -f -p "127.0.0.1:$candidate" -h "$www" &
  httpd_pid=$!
  tries=0
  while [ "$tries" -lt 20 ] && kill -0 "$httpd_pid" 2>/dev/null; do
    # the nonce proves that the server answering is this driver's httpd
    if [ "$(busybox timeout 2 busybox wget -q -O - "http://127.0.0.1:$candidate/ping" 2>/dev/null)" = "$nonce" ]; then
      port="$candidate"
      break
    fi
    busybox sleep 0.1
    tries=$((tries + 1))
  done
  if [ -z "$port" ]; then
    kill "$httpd_pid" 2>/dev/null
    wait "$httpd_pid" 2>/dev/null
    httpd_pid=""
  fi
done
endpoint="http://127.0.0.1:$port/cgi-bin"
echo "task endpoint $endpoint"

# --- 2. the application
driver_conf=""
[ -n "$driver_id" ] && driver_conf="$(printf ',"spark.flint.driver.id":"%s"' "$driver_id")"
app_json="$(printf '{"name":"Flint Pi","image":"%s","command":["%s","sh","%s/pi-executor.sh","%s","{{EXECUTOR_ID}}"],"maxCores":%s,"coresPerExecutor":1,"memoryPerExecutorMB":64,"user":"flint-demo","labels":{"flint.demo":"pi"},"conf":{"spark.flint.executor.heartbeat.enabled":"true","spark.executor.heartbeatInterval":"%s","spark.network.timeout":"%s","spark.network.timeoutInterval":"%s","spark.executor.heartbeat.maxFailures":"%s"%s}}' \
  "$image" "$busybox_bin" "$demo_dir" "$endpoint" "$executors" "$hb_interval" "$hb_timeout" "$hb_check" "$hb_failures" "$driver_conf")"
# a retry after a timeout must not register a second application: the same Idempotency-Key gets the
# first answer (the key is new for every run: a supervised driver relaunched under its id is a new run)
registration_key="pi-driver-${driver_id:-local}-$nonce"
registration=""
if [ -n "$token" ]; then set -- --header "Authorization: Bearer $token"; else set --; fi
for attempt in 1 2 3; do
  registration="$(busybox timeout 15 busybox wget -q -O - "$@" --header 'Content-Type: application/json' --header "Idempotency-Key: $registration_key" --post-data "$app_json" "$api/v1/apps" 2>"$state/api.err")" && break
  registration=""
  busybox sleep 1
done
[ -n "$registration" ] || die "the application API at $api refused the registration: $(api_error)"
app_id="$(echo "$registration" | busybox sed -n 's/.*"appId":"\([^"]*\)".*/\1/p')"
app_token="$(echo "$registration" | busybox sed -n 's/.*"appToken":"\([^"]*\)".*/\1/p')"
[ -n "$app_id" ] || die "the application API answered without an appId: $registration"
[ -n "$app_token" ] || die "the application API answered without the application's token: $registration"
echo "registered application $app_id"

# --- 3. wait for every slice, watching the application and the clock
started="$(busybox date +%s)"
last=-1
ticks=0
while :; do
  done_count="$(count_in "$state/results")"
  if [ "$done_count" != "$last" ]; then
    echo "progress $done_count/$slices"
    last="$done_count"
  fi
  [ "$done_count" -ge "$slices" ] && break
  kill -0 "$httpd_pid" 2>/dev/null || die "the task endpoint (httpd) stopped"
  ticks=$((ticks + 1))
  if [ $((ticks % 8)) -eq 0 ]; then
    app_state="$(api_get "/v1/apps/$app_id" | busybox awk 'match($0, /"state":"[A-Z]+"/) { print substr($0, RSTART + 9, RLENGTH - 10) }')"
    case "$app_state" in
    FINISHED | FAILED | KILLED)
      app_id=""
      die "application ended ($app_state) with $done_count of $slices slices computed"
      ;;
    esac
    [ $(($(busybox date +%s) - started)) -lt "$timeout" ] || die "only $done_count of $slices slices were computed within ${timeout}s (are executors running? see the worker logs)"
  fi
  busybox sleep 0.25
done

# --- 4. the result
total="$(busybox sh "$demo_dir/pi-ledger.sh" total "$state")" || die "cannot add up the slices"
pi="$(echo "$total" | busybox head -n 1)"
per_executor="$(echo "$total" | busybox tail -n +2 | busybox sort -n | busybox awk '{ printf "%s%s:%s", sep, $1, $2; sep = " " }')"
used="$(echo "$total" | busybox tail -n +2 | busybox wc -l | busybox tr -d ' ')"
echo "Pi is roughly $pi"
echo "computed $slices slices of $intervals intervals on $used executors (slices per executor: $per_executor)"

# no more executors (the master would replace those that exit), then tell them "done",
# and let those that asked for work hear it, so they exit 0 rather than being stopped
api_post "/v1/apps/$app_id/executors" '{"total":0}' "$app_token" >/dev/null || die "could not release the executors of $app_id: $(api_error)"
busybox sh "$demo_dir/pi-ledger.sh" finish "$state" || die "cannot mark the ledger finished"
waited=0
while [ "$waited" -lt 12 ] && [ "$(count_in "$state/told")" -lt "$(count_in "$state/seen")" ]; do
  busybox sleep 0.25
  waited=$((waited + 1))
done

id="$app_id"
app_id=""
api_post "/v1/apps/$id/unregister" '' "$app_token" >/dev/null || {
  app_id=""
  die "could not unregister application $id: $(api_error)"
}
echo "unregistered application $id"
cleanup
busybox rm -rf "$state" "$www"
exit 0
