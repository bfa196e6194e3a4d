#!/usr/bin/env bash
# Bulk create to every account: rows/s of one POST /api/notifications/bulk/ with "all": true,
# and the latency of other requests meanwhile, on SQLite and on PostgreSQL.
#
#   bench/bulk.sh [--users N] [--runs R] [--only sqlite,postgres] [--out DIR] [--no-build]
#                 [-- extra herald-bench args]
#
# Each run: a fresh database (a new SQLite file; PostgreSQL: database herald_bench_bulk on
# 127.0.0.1:5432 as user postgres, dropped and created again), a release herald (limits off) on
# 127.0.0.1:18100 that migrates it and creates the admin, N accounts inserted straight into
# `users` with one SQL statement (registering them would cost an Argon2 hash each), then
# `herald-bench --phases bulk`, then the rows counted in the database against the answer's
# `created`. The database is dropped at the end.
#
# Options:
#   --users N      accounts inserted with SQL                  (default 100000)
#   --runs R       runs per backend                            (default 3)
#   --only LIST    sqlite, postgres or both                    (default sqlite,postgres)
#   --out DIR      JSON reports, server logs, summary.txt      (default /tmp/herald-bulk-DATE)
#   --no-build     use the already built release binaries
# Env: CARGO_TARGET_DIR (where the binaries are), HERALD_BIN / BENCH_BIN (explicit binaries).
set -euo pipefail
# shellcheck source=bench/limits-off.env
. "$(dirname "$0")/limits-off.env"

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
USERS=100000
RUNS=3
ONLY="sqlite,postgres"
OUT=""
BUILD=1
EXTRA=()
ADMIN_USER=admin
ADMIN_PASS=admin-pass-123
PORT=18100
PG="psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p 5432 -U postgres"
PG_DB=herald_bench_bulk

while [ $# -gt 0 ]; do
    case "$1" in
        --users) USERS="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --only) ONLY="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --) shift; EXTRA=("$@"); break ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "bulk.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$USERS" in ''|*[!0-9]*) echo "bulk.sh: --users must be a number" >&2; exit 2 ;; esac
case "$RUNS" in ''|*[!0-9]*) echo "bulk.sh: --runs must be a number" >&2; exit 2 ;; esac
if [ "$USERS" -gt 1000000 ] || [ "$RUNS" -gt 20 ]; then
    echo "bulk.sh: --users is at most 1000000, --runs at most 20" >&2; exit 2
fi
wants() { [[ ",$ONLY," == *",$1,"* ]]; }

OUT="${OUT:-/tmp/herald-bulk-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
echo "results: $OUT"
if [ "$BUILD" = 1 ]; then
    (cd "$ROOT" && cargo build --release -p herald-bench -p herald)
fi
BENCH="${BENCH_BIN:-$TARGET_DIR/release/herald-bench}"
HERALD="${HERALD_BIN:-$TARGET_DIR/release/herald}"

SERVER_PID=""
stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}
cleanup() {
    stop_server
    if wants postgres; then $PG -d postgres -c "DROP DATABASE IF EXISTS $PG_DB" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

# Starts herald on DATABASE_URL and waits (60 s at most) until it answers /readyz.
start_server() {
    local url="$1" log="$2"
    HERALD_BIND="127.0.0.1:$PORT" HERALD_DATABASE_URL="$url" \
        HERALD_ADMIN_USERNAME="$ADMIN_USER" HERALD_ADMIN_PASSWORD="$ADMIN_PASS" \
        RUST_LOG=warn "$HERALD" > "$log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 600); do
        if curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then return 0; fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then echo "bulk.sh: herald exited, see $log" >&2; return 1; fi
        sleep 0.1
    done
    echo "bulk.sh: herald not ready after 60 s, see $log" >&2
    return 1
}

# The accounts: bulkNNNNNN, the admin's hash and creation time (they never log in).
INSERT_USERS="INSERT INTO users (username, password_hash, role, created_at)
  SELECT 'bulk' || i, (SELECT password_hash FROM users ORDER BY id LIMIT 1), 'jobseeker',
         (SELECT created_at FROM users ORDER BY id LIMIT 1)"

run_one() {
    local backend="$1" n="$2" name="$backend-$2" sql url
    case "$backend" in
        sqlite)
            local db="$OUT/$name.sqlite3"
            rm -f "$db" "$db-wal" "$db-shm"
            url="sqlite://$db?mode=rwc"
            sql() { sqlite3 "$db" "$1"; }
            ;;
        postgres)
            $PG -d postgres -c "DROP DATABASE IF EXISTS $PG_DB" -c "CREATE DATABASE $PG_DB"
            url="postgres://postgres@127.0.0.1:5432/$PG_DB"
            sql() { $PG -d "$PG_DB" -t -A -c "$1"; }
            ;;
    esac
    start_server "$url" "$OUT/$name.log"
    case "$backend" in
        sqlite) sql "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $USERS) $INSERT_USERS FROM n" ;;
        postgres) sql "$INSERT_USERS FROM generate_series(1, $USERS) AS i; ANALYZE users" ;;
    esac
    echo "=== $name: $(sql 'SELECT count(*) FROM users') accounts; load: $(cut -d' ' -f1-3 /proc/loadavg)"
    "$BENCH" --url "http://127.0.0.1:$PORT" --admin-user "$ADMIN_USER" --admin-password "$ADMIN_PASS" \
        --phases bulk --rest-connections 4 --rest-secs 3 --timeout 600 --label "$name" \
        --json "$OUT/$name.json" "${EXTRA[@]}" | tee "$OUT/$name.txt"
    local created rows
    created="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["created"])' "$OUT/$name.json")"
    rows="$(sql 'SELECT count(*) FROM notifications')"
    echo "rows in notifications: $rows (answer: $created)" | tee -a "$OUT/$name.txt"
    stop_server
    if [ "$rows" != "$created" ]; then echo "bulk.sh: $name: $rows rows but created $created" >&2; return 1; fi
    if [ "$backend" = sqlite ]; then rm -f "$OUT/$name.sqlite3" "$OUT/$name.sqlite3-wal" "$OUT/$name.sqlite3-shm"; fi
}

for backend in sqlite postgres; do
    wants "$backend" || continue
    for n in $(seq 1 "$RUNS"); do run_one "$backend" "$n"; done
done

# Medians over the runs of each backend.
python3 - "$OUT" "$ONLY" "$RUNS" <<'EOF' | tee "$OUT/summary.txt"
import json, statistics, sys
out, only, runs = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3])
for backend in ("sqlite", "postgres"):
    if backend not in only:
        continue
    reps = [json.load(open(f"{out}/{backend}-{n}.json")) for n in range(1, runs + 1)]
    med = lambda f: statistics.median(f(r) for r in reps)
    d = lambda r: r["during"]["all"] or {}
    print(f"{backend}: median of {runs}: {med(lambda r: r['created']):.0f} rows in {med(lambda r: r['secs']):.2f} s = "
          f"{med(lambda r: r['rows_per_sec'] or 0):.0f} rows/s; other requests meanwhile: "
          f"n {med(lambda r: d(r).get('n', 0)):.0f}, p50 {med(lambda r: d(r).get('p50_ms', 0)):.2f} ms, "
          f"p99 {med(lambda r: d(r).get('p99_ms', 0)):.2f} ms, max {med(lambda r: d(r).get('max_ms', 0)):.2f} ms, "
          f"failed {med(lambda r: r['during']['failures']):.0f}; idle p99 "
          f"{med(lambda r: (r['idle']['all'] or {}).get('p99_ms', 0)):.2f} ms")
    for r in reps:
        print(f"  {r['label']}: {r['rows_per_sec']} rows/s, p99 {d(r).get('p99_ms')} ms, max {d(r).get('max_ms')} ms, n {d(r).get('n')}")
EOF
