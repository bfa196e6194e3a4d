#!/usr/bin/env bash
# BENCHMARKS.md's lead table from one sitting: every configuration of issue 21's table, each
# run --runs times in turn (bench/compare.sh with floor, herald, herald_pg, herald_2node and
# node_ws, plus the inbox phase), then `herald-bench --lead-table`: medians and ranges, each
# Herald figure against the floor and node_ws of the same sitting, each target met or missed,
# and the machine's own speed that day (cores, CPU model, load average, a one-core SHA-256
# probe, and the floor's figures, which are the machine's).
#
#   bench/lead-table.sh [options]
#
# Options:
#   --runs R       sittings of every configuration                  (default 3)
#   --quick        small sizes for a check of the whole chain: 1,000 sockets over 40 users,
#                  an inbox of 2,000, 3 rounds, 1 s rates and REST runs
#   --all          also bench/reconnect.sh (--runs times), bench/bulk.sh (--runs R) and
#                  bench/hundred-k.sh (once), whose rows close the table
#   --out DIR      raw JSON of every run, the logs and lead-table.md
#                  (default /tmp/herald-lead-DATE)
#   --no-build     use the already built release binaries
# Env: as bench/compare.sh (CARGO_TARGET_DIR, HERALD_BIN, BENCH_BIN, HERALD_SHARED).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
RUNS=3
QUICK=0
ALL=0
OUT=""
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS="$2"; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --all) ALL=1; shift ;;
        --out) OUT="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "lead-table.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$RUNS" in ''|*[!0-9]*) echo "lead-table.sh: --runs must be a number" >&2; exit 2 ;; esac
if [ "$RUNS" -lt 1 ] || [ "$RUNS" -gt 10 ]; then echo "lead-table.sh: --runs is 1 to 10" >&2; exit 2; fi

OUT="${OUT:-/tmp/herald-lead-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
echo "results: $OUT"
if [ "$BUILD" = 1 ]; then
    (cd "$ROOT" && cargo build --release -p herald-bench -p herald)
fi
BENCH="${BENCH_BIN:-$TARGET_DIR/release/herald-bench}"
export BENCH_BIN="$BENCH" HERALD_BIN="${HERALD_BIN:-$TARGET_DIR/release/herald}"

if [ "$QUICK" = 1 ]; then
    SIZES=(--sockets 1000 --users 40 --inbox 2000)
    EXTRA=(--rounds 3 --rate-secs 1 --flat-count 500 --rest-secs 1)
    RECONNECT=(--sockets 1000 --users 40 --missed 200)
    BULK=(--users 5000)
    HUNDRED_K=(--nodes 3 --sockets 6000 --listeners 3 --users 120 --rounds 3)
    SIZE_TEXT="quick: 1,000 sockets over 40 users, inbox 2,000"
else
    SIZES=(--sockets 10000 --users 200 --inbox 100000)
    EXTRA=()
    RECONNECT=()
    BULK=()
    HUNDRED_K=()
    SIZE_TEXT="10,000 sockets over 200 users, inbox 100,000"
fi

loadavg() { cut -d' ' -f1 /proc/loadavg; }
STARTED="$(date -u +%Y-%m-%dT%H:%M:%S)"
LOAD_START="$(loadavg)"
# One core's speed today: SHA-256 over 256 MiB of zeros.
t0="$(date +%s.%N)"
head -c 268435456 /dev/zero | sha256sum >/dev/null
t1="$(date +%s.%N)"
PROBE="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", 268.435456 / (b - a) }')"
echo "machine: $(nproc) cores, load $LOAD_START, SHA-256 probe $PROBE MB/s"

for i in $(seq 1 "$RUNS"); do
    echo "=== sitting $i of $RUNS: $(date -u +%H:%M:%S), load $(loadavg)"
    # One scratch directory for every sitting, so node_ws's npm install happens once.
    "$ROOT/bench/compare.sh" --no-build --only floor,herald,herald_pg,herald_2node,node_ws \
        "${SIZES[@]}" --work "$OUT/work" --out "$OUT/run-$i" -- "${EXTRA[@]}" \
        > "$OUT/run-$i.log" 2>&1 || echo "lead-table.sh: sitting $i: compare.sh exited $? (see $OUT/run-$i.log)" >&2
done

if [ "$ALL" = 1 ]; then
    for i in $(seq 1 "$RUNS"); do
        echo "=== reconnect $i of $RUNS"
        "$ROOT/bench/reconnect.sh" "${RECONNECT[@]}" --json "$OUT/reconnect-$i.json" \
            > "$OUT/reconnect-$i.log" 2>&1 || echo "lead-table.sh: reconnect $i failed (see $OUT/reconnect-$i.log)" >&2
    done
    echo "=== bulk"
    "$ROOT/bench/bulk.sh" --no-build --runs "$RUNS" "${BULK[@]}" --out "$OUT/bulk" \
        > "$OUT/bulk.log" 2>&1 || echo "lead-table.sh: bulk failed (see $OUT/bulk.log)" >&2
    echo "=== 100,000 sockets"
    "$ROOT/bench/hundred-k.sh" --no-build "${HUNDRED_K[@]}" --out "$OUT/hundred-k" \
        > "$OUT/hundred-k.log" 2>&1 || echo "lead-table.sh: hundred-k failed (see $OUT/hundred-k.log)" >&2
    if [ -f "$OUT/hundred-k/hundred-k.json" ]; then cp "$OUT/hundred-k/hundred-k.json" "$OUT/"; fi
fi

python3 - "$OUT/machine.json" <<EOF
import json, sys
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
json.dump({
    "started": "$STARTED", "ended": "$(date -u +%Y-%m-%dT%H:%M:%S)",
    "nproc": $(nproc), "cpu": cpu, "mem_gib": round(mem / 1048576),
    "commit": "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)",
    "loadavg_start": $LOAD_START, "loadavg_end": $(loadavg),
    "probe_mb_s": $PROBE, "runs": $RUNS, "sizes": "$SIZE_TEXT",
}, open(sys.argv[1], "w"), indent=1)
EOF
"$BENCH" --lead-table "$OUT" > "$OUT/lead-table.md"
cat "$OUT/lead-table.md"
