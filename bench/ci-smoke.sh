#!/usr/bin/env bash
# CI: start Herald on a fresh SQLite database in a scratch directory and run
# `herald-bench --smoke` against it: ~300 sockets over 20 users, a few seconds, non-zero exit
# on any lost, duplicated or misdelivered message, failed connect or failed create. Then the
# same check of the floor phase (herald-bench's own ideal server), of the catch-up after a
# restart (the reconnect phase, with its own server), and of two nodes on PostgreSQL + Redis
# (bench/nodes.sh: the sockets split over both, once held by this process and once by two
# listener processes). The last needs PostgreSQL on 127.0.0.1:5432 (user postgres) and Redis
# on 127.0.0.1:6379, as the ignored tests do.
#
# Env: CARGO_TARGET_DIR (default target/); HERALD_BIN / BENCH_BIN use prebuilt binaries
# instead of building (debug profile, like the rest of CI).
set -euo pipefail
# shellcheck source=bench/limits-off.env
. "$(dirname "$0")/limits-off.env"
cd "$(dirname "$0")/.."

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
if [ -z "${HERALD_BIN:-}" ]; then
    cargo build --bin herald
    HERALD_BIN="$TARGET_DIR/debug/herald"
fi
if [ -z "${BENCH_BIN:-}" ]; then
    cargo build -p herald-bench
    BENCH_BIN="$TARGET_DIR/debug/herald-bench"
fi

WORK="$(mktemp -d /tmp/herald-smoke.XXXXXX)"
PID=""
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill "$PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# A free loopback port (nothing answers on it).
PORT=""
for p in $(seq 18050 18099); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then PORT="$p"; break; fi
done
[ -n "$PORT" ] || { echo "ci-smoke: no free port in 18050-18099" >&2; exit 1; }

HERALD_BIND="127.0.0.1:$PORT" \
HERALD_DATABASE_URL="sqlite://$WORK/herald.db?mode=rwc" \
HERALD_ADMIN_USERNAME=admin HERALD_ADMIN_PASSWORD=admin-pass-123 \
RUST_LOG=warn "$HERALD_BIN" > "$WORK/herald.log" 2>&1 &
PID=$!

up=0
for _ in $(seq 1 300); do
    kill -0 "$PID" 2>/dev/null || break
    if curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then up=1; break; fi
    sleep 0.2
done
if [ "$up" != 1 ]; then
    echo "ci-smoke: Herald did not answer /healthz on $PORT" >&2
    tail -50 "$WORK/herald.log" >&2 || true
    exit 1
fi

status=0
"$BENCH_BIN" --url "http://127.0.0.1:$PORT" --smoke --pid "$PID" --label herald-ci-smoke \
    --admin-user admin --admin-password admin-pass-123 --json "$WORK/smoke.json" || status=$?
if [ "$status" != 0 ]; then
    echo "ci-smoke: herald-bench --smoke failed ($status); server log tail:" >&2
    tail -50 "$WORK/herald.log" >&2 || true
    exit "$status"
fi

# The floor's ideal server (a child of herald-bench) must deliver every round too, or the
# figures compare.sh sets beside Herald's would be wrong.
"$BENCH_BIN" --smoke --phases floor --json "$WORK/floor.json" || status=$?
if [ "$status" != 0 ]; then
    echo "ci-smoke: herald-bench --smoke --phases floor failed ($status)" >&2
    exit "$status"
fi

# Catch-up after a restart: herald-bench starts its own Herald on a scratch SQLite file,
# SIGKILLs it, has a second process create 200 notifications, restarts it and fails unless all
# 300 sockets reconnect and get each missed notification exactly once (about 10 s in debug).
RC_PORT=""
for p in $(seq 18100 2 18148); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && ! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 1))") 2>/dev/null; then
        RC_PORT="$p"; break
    fi
done
[ -n "$RC_PORT" ] || { echo "ci-smoke: no free port pair in 18100-18149" >&2; exit 1; }
HERALD_BIN="$HERALD_BIN" BENCH_BIN="$BENCH_BIN" PORT="$RC_PORT" \
    bash bench/reconnect.sh --sockets 300 --users 20 --missed 200 --setup-timeout 60 \
    --json "$WORK/reconnect.json" > "$WORK/reconnect.out" || status=$?
if [ "$status" != 0 ]; then
    echo "ci-smoke: herald-bench --phases reconnect failed ($status)" >&2
    cat "$WORK/reconnect.out" >&2 || true
    exit "$status"
fi

# Two nodes on one PostgreSQL database and one Redis: every phase with the sockets split over
# both (creates on the first, so per-user pushes cross Redis), then the global rounds with the
# sockets held by two listener processes. Either fails on any lost, duplicated or misdelivered
# message.
if ! pg_isready -h 127.0.0.1 -p 5432 -q || ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "ci-smoke: the two-node run needs PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379)" >&2
    exit 1
fi
HERALD_BIN="$HERALD_BIN" BENCH_BIN="$BENCH_BIN" \
    bash bench/nodes.sh --no-build --nodes 2 --smoke --label ci-2node --out "$WORK/nodes" \
    > "$WORK/nodes.out" 2>&1 || status=$?
if [ "$status" = 0 ]; then
    HERALD_BIN="$HERALD_BIN" BENCH_BIN="$BENCH_BIN" \
        bash bench/nodes.sh --no-build --nodes 2 --smoke --listeners 2 --label ci-2node-listeners \
        --out "$WORK/nodes" -- --phases connect,global >> "$WORK/nodes.out" 2>&1 || status=$?
fi
if [ "$status" != 0 ]; then
    echo "ci-smoke: two nodes on PostgreSQL + Redis failed ($status)" >&2
    cat "$WORK/nodes.out" >&2 || true
else
    grep -E '^(=== |nodes: sockets each|listener processes|global: delivered|result)' "$WORK/nodes.out" || true
fi
exit "$status"
