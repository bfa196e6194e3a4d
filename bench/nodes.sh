#!/usr/bin/env bash
# Herald as it runs in production: N nodes on one PostgreSQL database and one Redis, with
# herald-bench spreading its sockets round-robin over them.
#
#   bench/nodes.sh [options] [-- extra herald-bench args]
#
# Creates a fresh database herald_bench_<random> (127.0.0.1:5432, user postgres) and uses the
# same name as the nodes' Redis channel prefix (127.0.0.1:6379), starts N release nodes with the
# abuse limits off (limits-off.env) and the retention cap lifted, the first alone (it migrates
# and creates the admin), waits until each answers /readyz, runs herald-bench against all of
# them (--url and --pid per node: CPU and RSS summed, and per node in the JSON), stops them and
# drops the database. Registrations, logins, creates and REST go to the first node. --nodes 1
# is the "Herald (PostgreSQL + Redis)" configuration of one node.
#
# Options:
#   --nodes N        nodes                                         (default 2)
#   --sockets S      sockets, round-robin over the nodes            (default 10000)
#   --users U        users                                          (default 200)
#   --listeners L    tool processes holding the sockets (0: one)    (default 0)
#   --label NAME     name of the run: NAME.json, NAME.txt in --out  (default nodes-N)
#   --out DIR        results and the nodes' logs   (default /tmp/herald-nodes-DATE)
#   --port P         first port tried for the nodes                 (default 18300)
#   --smoke          herald-bench --smoke (CI: ~300 sockets, fails on any loss)
#   --no-build       use the already built release binaries
# Exits non-zero when herald-bench fails or its report is not ok (lost, duplicated,
# misdelivered, failed connects, ...), after printing the problems.
# Env: CARGO_TARGET_DIR (where the binaries are), HERALD_BIN / BENCH_BIN (explicit binaries).
set -euo pipefail
# shellcheck source=bench/limits-off.env
. "$(dirname "$0")/limits-off.env"
# shellcheck source=bench/nodes-lib.sh
. "$(dirname "$0")/nodes-lib.sh"

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
NODES=2
SOCKETS=10000
USERS=200
LISTENERS=0
LABEL=""
OUT=""
PORT=18300
SMOKE=0
BUILD=1
EXTRA=()
ADMIN_USER=admin
ADMIN_PASS=admin-pass-123

while [ $# -gt 0 ]; do
    case "$1" in
        --nodes) NODES="$2"; shift 2 ;;
        --sockets) SOCKETS="$2"; shift 2 ;;
        --users) USERS="$2"; shift 2 ;;
        --listeners) LISTENERS="$2"; shift 2 ;;
        --label) LABEL="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --port) PORT="$2"; shift 2 ;;
        --smoke) SMOKE=1; shift ;;
        --no-build) BUILD=0; shift ;;
        --) shift; EXTRA=("$@"); break ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "nodes.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
for v in NODES SOCKETS USERS LISTENERS PORT; do
    case "${!v}" in ''|*[!0-9]*) echo "nodes.sh: --${v,,} must be a number" >&2; exit 2 ;; esac
done
if [ "$NODES" -lt 1 ] || [ "$NODES" -gt 16 ]; then echo "nodes.sh: --nodes is 1 to 16" >&2; exit 2; fi
LABEL="${LABEL:-nodes-$NODES}"
OUT="${OUT:-/tmp/herald-nodes-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"

# One process may hold at most 20,000 files here: ask for that, or the hard limit if lower.
HARD="$(ulimit -Hn)"
if [ "$HARD" = unlimited ] || [ "$HARD" -gt 20000 ]; then HARD=20000; fi
ulimit -n "$HARD"

if [ "$BUILD" = 1 ]; then
    (cd "$ROOT" && cargo build --release -p herald-bench -p herald)
fi
BENCH="${BENCH_BIN:-$TARGET_DIR/release/herald-bench}"
HERALD="${HERALD_BIN:-$TARGET_DIR/release/herald}"
for b in "$BENCH" "$HERALD"; do
    [ -x "$b" ] || { echo "nodes.sh: $b missing (build it, or set CARGO_TARGET_DIR)" >&2; exit 1; }
done

trap hn_teardown EXIT
trap 'hn_teardown; exit 130' INT TERM
hn_setup
SIZE="$SOCKETS sockets, $USERS users"
if [ "$SMOKE" = 1 ]; then SIZE="--smoke sizes"; fi
echo "=== $LABEL: $NODES node(s) on PostgreSQL $HN_DB + Redis; $SIZE, listeners $LISTENERS; load $(cut -d' ' -f1-3 /proc/loadavg)"
hn_start "$NODES" "$PORT" "$OUT"
echo "nodes: ${HN_URLS[*]} (pids ${HN_PIDS[*]})"

args=(--url "$HN_URL_LIST" --pid "$HN_PID_LIST" --label "$LABEL"
      --admin-user "$ADMIN_USER" --admin-password "$ADMIN_PASS"
      --sockets "$SOCKETS" --users "$USERS" --listeners "$LISTENERS" --json "$OUT/$LABEL.json")
if [ "$SMOKE" = 1 ]; then
    # --smoke shrinks only what is not given: leave the sizes to it unless asked.
    args=(--url "$HN_URL_LIST" --pid "$HN_PID_LIST" --label "$LABEL" --smoke
          --admin-user "$ADMIN_USER" --admin-password "$ADMIN_PASS"
          --listeners "$LISTENERS" --json "$OUT/$LABEL.json")
fi
status=0
"$BENCH" "${args[@]}" "${EXTRA[@]}" > "$OUT/$LABEL.txt" 2> "$OUT/$LABEL.bench.log" || status=$?
cat "$OUT/$LABEL.txt"
if [ "$status" != 0 ]; then
    echo "nodes.sh: herald-bench exited $status; its log's tail:" >&2
    tail -30 "$OUT/$LABEL.bench.log" >&2 || true
    for i in "${!HN_PIDS[@]}"; do tail -5 "$OUT/node-$i.log" >&2 || true; done
    exit "$status"
fi
ok="$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("ok" if r["ok"] else "; ".join(r["problems"]))' "$OUT/$LABEL.json")"
if [ "$ok" != ok ]; then
    echo "nodes.sh: $LABEL: PROBLEMS: $ok" >&2
    exit 1
fi
echo "results in $OUT"
