#!/usr/bin/env bash
# pack-install.sh PREFIX: pack this checkout as npm would publish it and install the
# tarball into PREFIX (an empty or missing directory) the way a user installs a
# command, with production dependencies only:
#   npm pack                      (its prepack script builds dist/ from the sources)
#   npm install --global --prefix PREFIX --omit=dev flint-<version>.tgz
# The last line it prints is the installed command, PREFIX/bin/flint. .ci/run, the
# packed-install test and `npm run bench` use it; it is not part of the package.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: bash infra/pack-install.sh PREFIX" >&2; exit 2; }
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="$1"
if [ -e "$prefix" ] && [ -n "$(ls -A "$prefix")" ]; then
  echo "pack-install: $prefix is not empty" >&2
  exit 2
fi
mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"

pack_dir="$(mktemp -d)"
trap 'rm -rf "$pack_dir"' EXIT

# npm pack prints the tarball's name as its last line of standard output
tarball="$(cd "$repo_root" && npm pack --pack-destination "$pack_dir" --loglevel=warn | tail -n 1)"
[ -f "$pack_dir/$tarball" ] || { echo "pack-install: npm pack did not write a tarball ($tarball)" >&2; exit 1; }
echo "pack-install: packed $tarball ($(du -k "$pack_dir/$tarball" | cut -f1) kB)" >&2

# --prefer-offline: what `npm ci` already fetched comes from npm's cache; the rest from the registry
npm install --global --prefix "$prefix" --omit=dev --prefer-offline --no-audit --no-fund --loglevel=warn "$pack_dir/$tarball" >&2
[ -x "$prefix/bin/flint" ] || { echo "pack-install: $prefix/bin/flint was not installed" >&2; exit 1; }
echo "$prefix/bin/flint"
