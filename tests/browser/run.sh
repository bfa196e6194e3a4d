#!/usr/bin/env bash
# Browser tests for Herald's static pages: headless Chromium (Debian's) via playwright-core.
# Usage: bash tests/browser/run.sh [test files...]
# Env: HERALD_BIN (server binary; default ${CARGO_TARGET_DIR:-<repo>/target}/debug/herald),
#      HERALD_BUILD=1 to run `cargo build` first, SCREENSHOTS=1 to refresh the README's pictures in docs/ (phone.test.mjs).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

if [ ! -x /usr/bin/chromium ]; then
  echo "run.sh: installing Debian's chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  apt-get install -y --no-install-recommends chromium >&2
fi

if ! command -v node >/dev/null 2>&1; then
  echo "run.sh: node is required (>= 20)" >&2
  exit 1
fi

export HERALD_BIN="${HERALD_BIN:-${CARGO_TARGET_DIR:-$repo/target}/debug/herald}"
if [ "${HERALD_BUILD:-0}" = 1 ]; then
  (cd "$repo" && cargo build --bin herald >&2)
fi
if [ ! -x "$HERALD_BIN" ]; then
  echo "run.sh: server binary not found at $HERALD_BIN (build it with 'cargo build' or set HERALD_BIN)" >&2
  exit 1
fi

cd "$here"
npm ci --no-audit --no-fund --loglevel=error >&2

mkdir -p "$repo/test-output/browser"
if [ "$#" -gt 0 ]; then
  files=("$@")
else
  files=(*.test.mjs)
fi
exec node --test --test-concurrency=1 --test-timeout=120000 "${files[@]}"
