#!/usr/bin/env bash
# setup.sh: make this machine ready to run and test Flint, idempotently.
#
# Safe to run any number of times, as root, on a fresh Debian 12 machine or on
# one where everything already runs; each step checks first and prints one line.
#   1. Debian packages: redis-server docker.io busybox-static chromium prometheus (only the missing ones;
#      prometheus for promtool; no package's own service is started)
#   2. dockerd, when /var/run/docker.sock does not answer (no bridge, no iptables)
#   3. Redis on 127.0.0.1:6379 with infra/redis.conf, requiring a password: a generated
#      secret in /etc/flint/redis-password (owner only), loaded by Redis as a SHA-256
#      from /etc/flint/redis-users.acl. A Redis already answering there without a
#      password gets that password at once (ACL SETUSER default, existing connections
#      unaffected); skipped when FLINT_REDIS_URL / FLINT_TEST_REDIS_URL points elsewhere
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
# FLINT_REDIS_PORT and FLINT_REDIS_SECRET_DIR: another port and secret directory (tests of this script)
REDIS_PORT="${FLINT_REDIS_PORT:-6379}"
REDIS_SECRET_DIR="${FLINT_REDIS_SECRET_DIR:-/etc/flint}"
REDIS_PASSWORD_FILE="$REDIS_SECRET_DIR/redis-password"
REDIS_ACL_FILE="$REDIS_SECRET_DIR/redis-users.acl"
# FLINT_SETUP_ONLY=redis runs only the Redis step (packages, Docker, images and modules are left alone)
SETUP_ONLY="${FLINT_SETUP_ONLY:-}"
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

# redis_cli: redis-cli against the local Redis, authenticated with the generated password
# when it exists. The password goes through the environment (REDISCLI_AUTH), never argv.
redis_cli() {
  if [ -r "$REDIS_PASSWORD_FILE" ]; then
    REDISCLI_AUTH="$(cat "$REDIS_PASSWORD_FILE")" redis-cli --no-auth-warning -h 127.0.0.1 -p "$REDIS_PORT" "$@"
  else
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"
  fi
}

local_redis_answers() {
  [ "$(redis_cli ping 2>/dev/null || true)" = "PONG" ]
}

# redis_answers_without_password: something answers PING there with no password at all
redis_answers_without_password() {
  [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null || true)" = "PONG" ]
}

# ensure_redis_secret: the password of the `default` user (256 random bits, owner-only file)
# and the aclfile that gives it to Redis as a SHA-256. An existing password is kept; the
# aclfile's other users (e.g. those `flint acl --apply` saved) are kept.
ensure_redis_secret() {
  mkdir -p "$REDIS_SECRET_DIR"
  chmod 700 "$REDIS_SECRET_DIR"
  if [ ! -s "$REDIS_PASSWORD_FILE" ]; then
    local partial="$REDIS_PASSWORD_FILE.partial"
    (umask 077 && head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$partial" && printf '\n' >>"$partial")
    mv "$partial" "$REDIS_PASSWORD_FILE"
    say "redis: generated a password for the default user in $REDIS_PASSWORD_FILE (owner only)"
  fi
  chmod 600 "$REDIS_PASSWORD_FILE"
  local hash line others=""
  hash="$(tr -d '\n' <"$REDIS_PASSWORD_FILE" | sha256sum | cut -c1-64)"
  line="user default on #$hash ~* &* +@all"
  if [ -f "$REDIS_ACL_FILE" ]; then others="$(grep -v '^user default ' "$REDIS_ACL_FILE" || true)"; fi
  (umask 077 && { printf '%s\n' "$line"; [ -z "$others" ] || printf '%s\n' "$others"; } >"$REDIS_ACL_FILE.partial")
  mv "$REDIS_ACL_FILE.partial" "$REDIS_ACL_FILE"
  chmod 600 "$REDIS_ACL_FILE"
  REDIS_DEFAULT_HASH="$hash"
}

# require_password_on_running_redis: a Redis that answers without a password gets the
# generated one now (ACL SETUSER default; connections already open stay authenticated),
# saved in its aclfile if it has one, else loaded from ours at its next start by this script.
require_password_on_running_redis() {
  local reply aclfile
  reply="$(printf 'ACL SETUSER default on resetpass #%s ~* &* +@all\n' "$REDIS_DEFAULT_HASH" | redis-cli -h 127.0.0.1 -p "$REDIS_PORT" 2>&1 || true)"
  [ "$reply" = "OK" ] || fail "could not set the password of the Redis on 127.0.0.1:$REDIS_PORT: $reply"
  aclfile="$(redis_cli config get aclfile 2>/dev/null | sed -n 2p || true)"
  if [ -n "$aclfile" ]; then
    redis_cli acl save >/dev/null || fail "the Redis on 127.0.0.1:$REDIS_PORT did not save its aclfile $aclfile"
    say "redis: the running Redis on 127.0.0.1:$REDIS_PORT now requires the password (saved in its aclfile $aclfile)"
  else
    say "redis: the running Redis on 127.0.0.1:$REDIS_PORT now requires the password (open connections are unaffected);"
    say "redis:   it was started without an aclfile, so restart it with this script to keep it (and users saved by flint acl --apply) across restarts:"
    say "redis:   REDISCLI_AUTH=\$(cat $REDIS_PASSWORD_FILE) redis-cli -p $REDIS_PORT shutdown && bash infra/setup.sh"
  fi
}

start_redis() {
  local external="${FLINT_REDIS_URL:-${FLINT_TEST_REDIS_URL:-}}"
  if [ -n "$external" ]; then
    case "$external" in
      redis://* | rediss://*)
        [ "$(redis-cli -u "$external" --no-auth-warning ping 2>/dev/null || true)" = "PONG" ] ||
          fail "Redis at \$FLINT_REDIS_URL/\$FLINT_TEST_REDIS_URL does not answer PING"
        say "redis: using the external Redis from the environment (answers PING)"
        ;;
      *) say "redis: using the external Redis from the environment (not checked: $(printf '%s' "$external" | cut -d: -f1) URL)" ;;
    esac
    return
  fi
  have redis-cli || fail "redis-cli not found (package redis-tools, installed with redis-server)"
  [ "$(id -u)" -eq 0 ] || [ -w "$(dirname "$REDIS_SECRET_DIR")" ] || [ -w "$REDIS_SECRET_DIR" ] ||
    fail "cannot write $REDIS_SECRET_DIR (the Redis password's directory) as this user: run 'sudo bash infra/setup.sh'"
  ensure_redis_secret
  if redis_answers_without_password; then
    require_password_on_running_redis
  fi
  if local_redis_answers; then
    local policy
    policy="$(redis_cli config get maxmemory-policy 2>/dev/null | sed -n 2p || true)"
    if [ -n "$policy" ] && [ "$policy" != "noeviction" ]; then
      say "redis: WARNING: the Redis at 127.0.0.1:$REDIS_PORT has maxmemory-policy $policy; BullMQ needs noeviction"
    fi
    say "redis: found a Redis answering at 127.0.0.1:$REDIS_PORT (password required: $REDIS_PASSWORD_FILE)"
    return
  fi
  if [ -n "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null || true)" ]; then
    fail "a Redis that does not accept the password in $REDIS_PASSWORD_FILE answers on 127.0.0.1:$REDIS_PORT: stop it, or point FLINT_REDIS_URL at it"
  fi
  have redis-server || fail "redis-server not found (package redis-server)"
  # Redis changes into the config file's `dir` while reading it, before any
  # --dir override applies, so both must exist.
  local conf_dir
  conf_dir="$(awk '$1 == "dir" { print $2 }' "$REPO_ROOT/infra/redis.conf")"
  mkdir -p "$REDIS_DATA_DIR" ${conf_dir:+"$conf_dir"}
  chmod 700 "$REDIS_DATA_DIR"
  local pidfile="${FLINT_REDIS_PIDFILE:-/var/run/flint-redis.pid}" logfile="${FLINT_REDIS_LOGFILE:-/var/log/flint-redis.log}"
  if [ -z "${FLINT_REDIS_PIDFILE:-}" ] && { [ ! -w /var/run ] || [ ! -w /var/log ]; }; then
    pidfile=/tmp/flint-redis.pid
    logfile=/tmp/flint-redis.log
  fi
  # the password reaches Redis only through the aclfile (as a SHA-256), never its command line
  redis-server "$REPO_ROOT/infra/redis.conf" --port "$REDIS_PORT" --dir "$REDIS_DATA_DIR" --pidfile "$pidfile" --logfile "$logfile" --aclfile "$REDIS_ACL_FILE" ||
    fail "redis-server failed to start; see $logfile"
  local tries=0
  until local_redis_answers; do
    # five tries a second
    if [ "$tries" -ge $((WAIT_SECONDS * 5)) ]; then
      tail -n 20 "$logfile" >&2 || true
      fail "Redis did not answer PING at 127.0.0.1:$REDIS_PORT within ${WAIT_SECONDS}s; see $logfile"
    fi
    sleep 0.2
    tries=$((tries + 1))
  done
  say "redis: started redis-server with infra/redis.conf on 127.0.0.1:$REDIS_PORT (password required: $REDIS_PASSWORD_FILE; data $REDIS_DATA_DIR, log $logfile)"
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
  if [ "$SETUP_ONLY" = "redis" ]; then
    start_redis
    say "redis ready ($((SECONDS - started))s)"
    return
  fi
  [ -z "$SETUP_ONLY" ] || fail "FLINT_SETUP_ONLY='$SETUP_ONLY': the only step that runs alone is 'redis'"
  install_packages
  start_dockerd
  start_redis
  build_images
  install_node_modules
  build_demo_image
  say "ready ($((SECONDS - started))s)"
}

main "$@"
