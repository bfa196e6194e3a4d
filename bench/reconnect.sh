#!/usr/bin/env bash
# The catch-up benchmark: `herald-bench --phases reconnect` on a fresh SQLite file in a scratch
# directory, abuse limits off. herald-bench starts Herald itself, opens the sockets, SIGKILLs
# it, has a second Herald process on the same file create the missed notifications, restarts the
# first and times the reconnect (BENCHMARKS.md, "Catch-up after a restart").
#
# Env: HERALD_BIN, BENCH_BIN (default: release binaries under CARGO_TARGET_DIR or target/);
# PORT (default 18040; the creator uses PORT+1). Extra arguments go to herald-bench, e.g.
#   bench/reconnect.sh --sockets 10000 --users 200 --missed 2000 --json /tmp/rc1.json
set -euo pipefail
# shellcheck source=bench/limits-off.env
. "$(dirname "$0")/limits-off.env"
cd "$(dirname "$0")/.."

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
HERALD_BIN="${HERALD_BIN:-$TARGET_DIR/release/herald}"
BENCH_BIN="${BENCH_BIN:-$TARGET_DIR/release/herald-bench}"
PORT="${PORT:-18040}"

WORK="$(mktemp -d /tmp/herald-reconnect.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

HERALD_DATABASE_URL="sqlite://$WORK/herald.db?mode=rwc" \
HERALD_ADMIN_USERNAME=admin HERALD_ADMIN_PASSWORD=admin-pass-123 \
RUST_LOG="${RUST_LOG:-warn}" \
"$BENCH_BIN" --phases reconnect --server-bin "$HERALD_BIN" --url "http://127.0.0.1:$PORT" \
    --creator-port "$((PORT + 1))" --server-log "$WORK/herald.log" "$@" || {
    rc=$?
    echo "reconnect: herald-bench exited $rc; the server's log:" >&2
    tail -30 "$WORK/herald.log" >&2 || true
    exit "$rc"
}
