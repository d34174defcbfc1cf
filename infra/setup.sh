#!/usr/bin/env bash
# setup.sh: make this machine ready to run and test Flint, idempotently.
#
# Safe to run any number of times, as root, on a fresh Debian 12 machine or on
# one where everything already runs; each step checks first and prints one line.
#   1. Debian packages: redis-server docker.io busybox-static chromium prometheus (only the missing ones;
#      prometheus for promtool; no package's own service is started)
#   2. dockerd, when /var/run/docker.sock does not answer (no bridge, no iptables)
#   3. Redis on 127.0.0.1:6379 with infra/redis.conf, unless one answers there or
#      FLINT_REDIS_URL / FLINT_TEST_REDIS_URL points elsewhere
#   4. local images from infra/images/<name>/ as flint-test-<name>:latest, rebuilt
#      only when their inputs change (content hash in a label); never pulled
#   5. npm ci (npm install without a lockfile) when node_modules is missing or stale
#      (in a git checkout; an installed package came with its dependencies)
#   6. the demo image flint-demo:latest (demo/image.ts), rebuilt only when its inputs change
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DOCKER_SOCK=/var/run/docker.sock
DOCKERD_LOG="${FLINT_DOCKERD_LOG:-/var/log/flint-dockerd.log}"
# FLINT_REDIS_DATA_DIR overrides the `dir` of infra/redis.conf.
REDIS_DATA_DIR="${FLINT_REDIS_DATA_DIR:-/var/lib/flint-redis}"
WAIT_SECONDS="${FLINT_SETUP_WAIT_SECONDS:-60}"
# prometheus: its promtool checks every metrics endpoint (test/integration/spark-metrics.test.ts)
APT_PACKAGES=(redis-server docker.io busybox-static chromium prometheus)
IMAGE_HASH_LABEL=flint.content-hash

say() { printf 'setup: %s\n' "$*"; }
fail() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
# A git checkout holds the TypeScript sources and runs them through tsx; an installed
# package holds the compiled dist/ only (bin/flint.js makes the same distinction).
is_checkout() { [ -f "$REPO_ROOT/cli/main.ts" ]; }

# ---------------------------------------------------------------- 1. packages

package_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

install_packages() {
  local missing=()
  local pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    package_installed "$pkg" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    say "packages: found ${APT_PACKAGES[*]}"
    return
  fi
  [ "$(id -u)" -eq 0 ] || fail "packages missing (${missing[*]}) and not running as root: run 'sudo bash infra/setup.sh'"
  say "packages: installing ${missing[*]}"
  # Keep the packages' init scripts from starting their own dockerd (with bridge
  # networks and iptables) or a Redis with Debian's config: this script starts
  # both itself, with Flint's settings. A policy-rc.d that is already there is left alone.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    created_policy=1
  fi
  local status=0
  {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq &&
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  } || status=$?
  [ "$created_policy" -eq 1 ] && rm -f "$policy"
  [ "$status" -eq 0 ] || fail "apt-get install ${missing[*]} failed (exit $status)"
  say "packages: installed ${missing[*]}"
}

# ---------------------------------------------------------------- 2. docker

docker_answers() { have docker && docker info >/dev/null 2>&1; }

start_dockerd() {
  if docker_answers; then
    say "docker: found a running engine at $DOCKER_SOCK"
    return
  fi
  have dockerd || fail "dockerd not found (package docker.io)"
  mkdir -p "$(dirname "$DOCKERD_LOG")"
  # Flint's containers use NetworkMode host or none, so the engine needs no bridge
  # and must not touch the host's firewall.
  setsid nohup dockerd --bridge=none --iptables=false --ip-masq=false >>"$DOCKERD_LOG" 2>&1 </dev/null &
  local pid=$!
  say "docker: started dockerd (pid $pid, log $DOCKERD_LOG); waiting for $DOCKER_SOCK"
  local waited=0
  until docker_answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$DOCKERD_LOG" >&2 || true
      fail "dockerd exited during start-up; see $DOCKERD_LOG"
    fi
    if [ "$waited" -ge "$WAIT_SECONDS" ]; then
      tail -n 20 "$DOCKERD_LOG" >&2 || true
      fail "docker did not answer at $DOCKER_SOCK within ${WAIT_SECONDS}s; see $DOCKERD_LOG"
    fi
    sleep 1
    waited=$((waited + 1))
  done
  say "docker: engine answers after ${waited}s"
}

# ---------------------------------------------------------------- 3. redis

local_redis_answers() {
  [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null || true)" = "PONG" ]
}

start_redis() {
  local external="${FLINT_REDIS_URL:-${FLINT_TEST_REDIS_URL:-}}"
  if [ -n "$external" ]; then
    case "$external" in
      redis://* | rediss://*)
        [ "$(redis-cli -u "$external" ping 2>/dev/null || true)" = "PONG" ] ||
          fail "Redis at \$FLINT_REDIS_URL/\$FLINT_TEST_REDIS_URL does not answer PING"
        say "redis: using the external Redis from the environment (answers PING)"
        ;;
      *) say "redis: using the external Redis from the environment (not checked: $(printf '%s' "$external" | cut -d: -f1) URL)" ;;
    esac
    return
  fi
  have redis-cli || fail "redis-cli not found (package redis-tools, installed with redis-server)"
  if local_redis_answers; then
    local policy
    policy="$(redis-cli -h 127.0.0.1 -p 6379 config get maxmemory-policy 2>/dev/null | sed -n 2p || true)"
    if [ -n "$policy" ] && [ "$policy" != "noeviction" ]; then
      say "redis: WARNING: the Redis at 127.0.0.1:6379 has maxmemory-policy $policy; BullMQ needs noeviction"
    fi
    say "redis: found a Redis answering at 127.0.0.1:6379"
    return
  fi
  have redis-server || fail "redis-server not found (package redis-server)"
  # Redis changes into the config file's `dir` while reading it, before any
  # --dir override applies, so both must exist.
  local conf_dir
  conf_dir="$(awk '$1 == "dir" { print $2 }' "$REPO_ROOT/infra/redis.conf")"
  mkdir -p "$REDIS_DATA_DIR" ${conf_dir:+"$conf_dir"}
  chmod 700 "$REDIS_DATA_DIR"
  local pidfile=/var/run/flint-redis.pid logfile=/var/log/flint-redis.log
  if [ ! -w /var/run ] || [ ! -w /var/log ]; then
    pidfile=/tmp/flint-redis.pid
    logfile=/tmp/flint-redis.log
  fi
  redis-server "$REPO_ROOT/infra/redis.conf" --dir "$REDIS_DATA_DIR" --pidfile "$pidfile" --logfile "$logfile" ||
    fail "redis-server failed to start; see $logfile"
  local tries=0
  until local_redis_answers; do
    # five tries a second
    if [ "$tries" -ge $((WAIT_SECONDS * 5)) ]; then
      tail -n 20 "$logfile" >&2 || true
      fail "Redis did not answer PING at 127.0.0.1:6379 within ${WAIT_SECONDS}s; see $logfile"
    fi
    sleep 0.2
    tries=$((tries + 1))
  done
  say "redis: started redis-server with infra/redis.conf (data $REDIS_DATA_DIR, log $logfile)"
}

# ---------------------------------------------------------------- 4. images

static_busybox() {
  local candidate
  for candidate in /bin/busybox /usr/bin/busybox; do
    if [ -x "$candidate" ]; then
      printf '%s\n' "$candidate"
      return
    fi
  done
  fail "no busybox binary found (package busybox-static)"
}

# content_hash DIR BUSYBOX: a hash of every file in the image folder (names and
# contents) and of the busybox binary staged beside them.
content_hash() {
  local dir="$1" busybox="$2"
  {
    (cd "$dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    sha256sum <"$busybox"
  } | sha256sum | cut -c1-32
}

build_images() {
  local images_dir="$REPO_ROOT/infra/images"
  [ -d "$images_dir" ] || { say "images: no infra/images folder, nothing to build"; return; }
  local busybox
  busybox="$(static_busybox)"
  local dir name tag hash current context
  for dir in "$images_dir"/*/; do
    [ -f "$dir/Dockerfile" ] || continue
    name="$(basename "$dir")"
    tag="flint-test-$name:latest"
    hash="$(content_hash "$dir" "$busybox")"
    current="$(docker image inspect --format "{{ index .Config.Labels \"$IMAGE_HASH_LABEL\" }}" "$tag" 2>/dev/null || true)"
    if [ "$current" = "$hash" ]; then
      say "images: found $tag (inputs unchanged)"
      continue
    fi
    context="$(mktemp -d)"
    cp -a "$dir/." "$context/"
    cp "$busybox" "$context/busybox"
    local started=$SECONDS log
    log="$(mktemp)"
    # The legacy builder works offline and needs no BuildKit daemon; --network none
    # because the engine has no bridge and the build needs no network.
    if ! DOCKER_BUILDKIT=0 docker build --network none --label "$IMAGE_HASH_LABEL=$hash" -t "$tag" "$context" >"$log" 2>&1; then
      cat "$log" >&2
      rm -rf "$context" "$log"
      fail "docker build of $tag failed"
    fi
    rm -rf "$context" "$log"
    say "images: built $tag (hash $hash, $((SECONDS - started))s)"
  done
}

# ---------------------------------------------------------------- 5. node modules

# deps_hash: what decides the installed tree: the lockfile and package.json's
# dependency fields (an edit to its scripts must not reinstall node_modules).
deps_hash() {
  {
    (cd "$REPO_ROOT" && node -e '
      const p = JSON.parse(require("fs").readFileSync("package.json", "utf8"));
      const fields = ["dependencies", "devDependencies", "optionalDependencies", "peerDependencies", "overrides"];
      process.stdout.write(JSON.stringify(fields.map((f) => p[f] ?? null)));
    ')
    cat "$REPO_ROOT/package-lock.json" 2>/dev/null || true
  } | sha256sum | cut -c1-32
}

install_node_modules() {
  if ! is_checkout; then
    say "node modules: an installed package, its dependencies came with it"
    return
  fi
  have npm || fail "npm not found (Node 20 is expected on this machine)"
  local modules="$REPO_ROOT/node_modules" stamp="$REPO_ROOT/node_modules/.flint-deps-hash"
  local want reason=""
  want="$(deps_hash)"
  if [ ! -d "$modules" ]; then
    reason="node_modules is missing"
  elif [ -f "$stamp" ]; then
    [ "$(cat "$stamp")" = "$want" ] || reason="package.json or package-lock.json changed"
  else
    # No stamp yet (installed by hand): trust npm's own record of the installed
    # tree if it is newer than the lockfile (or package.json when there is none).
    local manifest="$REPO_ROOT/package-lock.json"
    [ -f "$manifest" ] || manifest="$REPO_ROOT/package.json"
    if [ ! -f "$modules/.package-lock.json" ] || [ "$manifest" -nt "$modules/.package-lock.json" ]; then
      reason="node_modules is older than $(basename "$manifest")"
    fi
  fi
  if [ -z "$reason" ]; then
    printf '%s\n' "$want" >"$stamp"
    say "node modules: found, up to date"
    return
  fi
  local started=$SECONDS
  if [ -f "$REPO_ROOT/package-lock.json" ]; then
    say "node modules: $reason; running npm ci"
    local log
    log="$(mktemp)"
    if ! (cd "$REPO_ROOT" && npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
      # never fall back to npm install: it would rewrite the lockfile and install
      # versions CI never tested
      cat "$log" >&2
      rm -f "$log"
      fail "npm ci failed: package-lock.json must match package.json (run npm install and commit package-lock.json)"
    fi
    rm -f "$log"
  else
    say "node modules: $reason; running npm install (no package-lock.json)"
    (cd "$REPO_ROOT" && npm install --no-audit --no-fund --loglevel=error >/dev/null) || fail "npm install failed"
  fi
  deps_hash >"$stamp"
  say "node modules: installed ($((SECONDS - started))s)"
}

# ---------------------------------------------------------------- 6. demo image

# build_demo_image: flint-demo:latest (the Pi demo's executors) from
# infra/images/demo/Containerfile, by demo/image.ts with the same content-hash
# rule as above; it needs node_modules, so it runs last.
build_demo_image() {
  if is_checkout; then
    (cd "$REPO_ROOT" && node --import tsx demo/build-image.ts) || fail "building flint-demo:latest failed"
  else
    (cd "$REPO_ROOT" && node dist/demo/build-image.js) || fail "building flint-demo:latest failed"
  fi
}

main() {
  local started=$SECONDS
  install_packages
  start_dockerd
  start_redis
  build_images
  install_node_modules
  build_demo_image
  say "ready ($((SECONDS - started))s)"
}

main "$@"
