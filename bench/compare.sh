#!/usr/bin/env bash
# Herald vs its peers, in one run, on this machine, with the same tool and parameters.
#
#   bench/compare.sh [options] [-- extra herald-bench args for every server]
#
# Builds release herald-bench and herald, copies the peers out of ../shared/peers into a
# scratch directory (nothing is written into the checkout or into ../shared), sets them
# up, then starts each server in turn on a loopback port, runs herald-bench against it,
# stops it, and writes one JSON and one text summary per server plus comparison.md.
#
# Options:
#   --sockets N          sockets for Herald and node_ws            (default 10000)
#   --users U            users for Herald and node_ws              (default 200)
#   --django-sockets N   sockets for the Django peer (it is slow)  (default 1000)
#   --django-users U     users for the Django peer (~0.25 s a hash) (default 40)
#   --django-args "..."  extra herald-bench args for Django only
#                        (default "--flat-count 500 --rounds 3")
#   --only LIST          comma-separated subset of the configurations (default all):
#                        floor        the tool's own ideal server (one write per socket), the
#                                     machine's lower bound for the connect and global figures
#                        herald       one node on SQLite, in-process hub
#                        herald_pg    one node on PostgreSQL + Redis (bench/nodes-lib.sh: a
#                                     fresh database herald_bench_<random>, dropped after)
#                        herald_2node two nodes on the same, the sockets split evenly; creates
#                                     and REST go to the first node
#                        node_ws, django   the peers
#   --inbox N            after each Herald configuration's run, a second herald-bench run
#                        against the same server: the list page of 50 for a user with N
#                        notifications against one with 50 (NAME-inbox.json; retention cap
#                        lifted). 0: none                              (default 0)
#   --out DIR            where results go        (default /tmp/herald-compare-DATE)
#   --work DIR           scratch dir for the peer copies and Herald's database; reusing
#                        one skips npm ci / keeps the venv       (default a new mktemp dir)
#   --no-build           use the already built release binaries
# Env: CARGO_TARGET_DIR (where the binaries are), HERALD_BIN / BENCH_BIN (explicit binaries),
#      HERALD_SHARED (default ../shared beside the checkout).
set -euo pipefail
# shellcheck source=bench/limits-off.env
. "$(dirname "$0")/limits-off.env"

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="${HERALD_SHARED:-$ROOT/../shared}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
SOCKETS=10000
USERS=200
DJANGO_SOCKETS=1000
DJANGO_USERS=40
DJANGO_ARGS="--flat-count 500 --rounds 3"
ONLY="floor,herald,herald_pg,herald_2node,node_ws,django"
INBOX=0
OUT=""
WORK=""
BUILD=1
EXTRA=()
ADMIN_USER=admin
ADMIN_PASS=admin-pass-123

while [ $# -gt 0 ]; do
    case "$1" in
        --sockets) SOCKETS="$2"; shift 2 ;;
        --users) USERS="$2"; shift 2 ;;
        --django-sockets) DJANGO_SOCKETS="$2"; shift 2 ;;
        --django-users) DJANGO_USERS="$2"; shift 2 ;;
        --django-args) DJANGO_ARGS="$2"; shift 2 ;;
        --only) ONLY="$2"; shift 2 ;;
        --inbox) INBOX="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --work) WORK="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --) shift; EXTRA=("$@"); break ;;
        -h|--help) sed -n '2,37p' "$0"; exit 0 ;;
        *) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

wants() { [[ ",$ONLY," == *",$1,"* ]]; }
for c in ${ONLY//,/ }; do
    case "$c" in floor|herald|herald_pg|herald_2node|node_ws|django) ;;
        *) echo "compare.sh: unknown configuration $c in --only" >&2; exit 2 ;;
    esac
done
case "$INBOX" in ''|*[!0-9]*) echo "compare.sh: --inbox must be a number" >&2; exit 2 ;; esac

OUT="${OUT:-/tmp/herald-compare-$(date +%Y%m%d-%H%M%S)}"
WORK="${WORK:-$(mktemp -d /tmp/herald-compare-work.XXXXXX)}"
case "$WORK" in "$ROOT"*|"$SHARED"*) echo "compare.sh: --work must be outside the checkout and shared/" >&2; exit 2 ;; esac
mkdir -p "$OUT" "$WORK"
echo "results: $OUT   scratch: $WORK"

# One process may hold at most 20,000 files here: ask for that, or the hard limit if lower.
HARD="$(ulimit -Hn)"
if [ "$HARD" = unlimited ] || [ "$HARD" -gt 20000 ]; then HARD=20000; fi
ulimit -n "$HARD"
echo "ulimit -n $(ulimit -n)"

if [ "$BUILD" = 1 ]; then
    (cd "$ROOT" && cargo build --release -p herald-bench && cargo build --release --bin herald)
fi
BENCH="${BENCH_BIN:-$TARGET_DIR/release/herald-bench}"
HERALD="${HERALD_BIN:-$TARGET_DIR/release/herald}"
[ -x "$BENCH" ] || { echo "compare.sh: $BENCH missing (build it, or set CARGO_TARGET_DIR)" >&2; exit 1; }

# ---- peers: copies outside the project ----
if wants node_ws; then
    if [ ! -d "$WORK/node_ws/node_modules/ws" ]; then
        rm -rf "$WORK/node_ws"
        cp -r "$SHARED/peers/node_ws" "$WORK/"
        (cd "$WORK/node_ws" && npm ci --no-audit --no-fund --loglevel=error)
    fi
fi
if wants django; then
    if [ ! -d "$WORK/django_seed" ]; then
        cp -r "$SHARED/peers/django_seed" "$WORK/"
    fi
    "$WORK/django_seed/setup.sh"
fi

# ---- servers, one at a time ----
# shellcheck source=bench/nodes-lib.sh
. "$ROOT/bench/nodes-lib.sh"
SERVER_PID=""
stop_server() {
    hn_teardown
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT TERM

wait_port() { # port timeout_s
    local deadline=$((SECONDS + $2))
    while [ $SECONDS -lt "$deadline" ]; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then return 1; fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.2
    done
    return 1
}

RESULTS=()
# Runs herald-bench against URLS (comma-separated) whose processes are PIDS; with --inbox, a
# second run of the inbox phase against the same servers for Herald's configurations.
run_bench() { # name urls pids sockets users extra...
    local name="$1" urls="$2" pids="$3" sockets="$4" users="$5"
    shift 5
    echo "=== $name (pid $pids) on $urls: $sockets sockets, $users users"
    if "$BENCH" --url "$urls" --pid "$pids" --label "$name" \
        --admin-user "$ADMIN_USER" --admin-password "$ADMIN_PASS" \
        --sockets "$sockets" --users "$users" --json "$OUT/$name.json" "$@" "${EXTRA[@]}" \
        > "$OUT/$name.txt" 2> "$OUT/$name.bench.log"; then
        :
    else
        echo "compare.sh: herald-bench against $name exited $?" >&2
    fi
    cat "$OUT/$name.txt"
    [ -f "$OUT/$name.json" ] && RESULTS+=("$OUT/$name.json")
    if [ "$INBOX" -gt 0 ] && [[ "$name" == herald* ]]; then
        echo "=== $name: the inbox phase, $INBOX notifications"
        # The filling creates go flat out; the bound is on the whole fill.
        if "$BENCH" --url "$urls" --pid "$pids" --label "$name" \
            --admin-user "$ADMIN_USER" --admin-password "$ADMIN_PASS" \
            --phases inbox --inbox-size "$INBOX" --json "$OUT/$name-inbox.json" \
            > "$OUT/$name-inbox.txt" 2> "$OUT/$name-inbox.bench.log"; then
            :
        else
            echo "compare.sh: herald-bench's inbox phase against $name exited $?" >&2
        fi
        cat "$OUT/$name-inbox.txt"
    fi
}

bench_one() { # name port sockets users extra...
    local name="$1" port="$2" sockets="$3" users="$4"
    shift 4
    if ! wait_port "$port" 180; then
        echo "compare.sh: $name did not come up on $port (log: $OUT/$name.log)" >&2
        stop_server
        return 0
    fi
    sleep 1
    run_bench "$name" "http://127.0.0.1:$port" "$SERVER_PID" "$sockets" "$users" "$@"
    stop_server
}

# Herald on PostgreSQL + Redis: NODES nodes on a fresh database.
bench_nodes() { # name nodes
    local name="$1"
    if [ ! -x "$HERALD" ]; then
        echo "compare.sh: $HERALD missing, skipping $name" >&2
        return 0
    fi
    mkdir -p "$OUT/$name-logs"
    if hn_setup && hn_start "$2" 18300 "$OUT/$name-logs"; then
        sleep 1
        run_bench "$name" "$HN_URL_LIST" "$HN_PID_LIST" "$SOCKETS" "$USERS"
    else
        echo "compare.sh: $name's nodes did not start (logs: $OUT/$name-logs)" >&2
    fi
    hn_teardown
}

if wants floor; then
    # No server to start: herald-bench runs its own ideal server as a child. --phases comes
    # last so that extra args (--phases connect,peruser, say) cannot override it.
    echo "=== floor (herald-bench's ideal server): $SOCKETS sockets"
    if "$BENCH" --label floor --sockets "$SOCKETS" --users "$USERS" --json "$OUT/floor.json" \
        "${EXTRA[@]}" --phases floor > "$OUT/floor.txt" 2> "$OUT/floor.bench.log"; then
        :
    else
        echo "compare.sh: herald-bench's floor exited $?" >&2
    fi
    cat "$OUT/floor.txt"
    [ -f "$OUT/floor.json" ] && RESULTS+=("$OUT/floor.json")
fi

if wants herald; then
    if [ -x "$HERALD" ]; then
        rm -f "$WORK/herald.db" "$WORK/herald.db-wal" "$WORK/herald.db-shm"
        HERALD_BIND=127.0.0.1:18000 \
        HERALD_DATABASE_URL="sqlite://$WORK/herald.db?mode=rwc" \
        HERALD_RETENTION__MAX_PER_USER=0 \
        HERALD_ADMIN_USERNAME="$ADMIN_USER" HERALD_ADMIN_PASSWORD="$ADMIN_PASS" \
        RUST_LOG=warn "$HERALD" > "$OUT/herald.log" 2>&1 &
        SERVER_PID=$!
        bench_one herald 18000 "$SOCKETS" "$USERS"
    else
        echo "compare.sh: $HERALD missing, skipping Herald" >&2
    fi
fi

if wants herald_pg; then
    bench_nodes herald_pg 1
fi

if wants herald_2node; then
    bench_nodes herald_2node 2
fi

if wants node_ws; then
    HERALD_ADMIN_USERNAME="$ADMIN_USER" HERALD_ADMIN_PASSWORD="$ADMIN_PASS" \
        node "$WORK/node_ws/server.js" 18200 > "$OUT/node_ws.log" 2>&1 &
    SERVER_PID=$!
    bench_one node_ws 18200 "$SOCKETS" "$USERS"
fi

if wants django; then
    # run.sh execs daphne, so $! is the server's pid.
    HERALD_ADMIN_USERNAME="$ADMIN_USER" HERALD_ADMIN_PASSWORD="$ADMIN_PASS" \
        HERALD_DB_PATH="$WORK/django.sqlite3" \
        "$WORK/django_seed/run.sh" 18100 > "$OUT/django.log" 2>&1 &
    SERVER_PID=$!
    # shellcheck disable=SC2086 # DJANGO_ARGS is a list of words on purpose
    bench_one django 18100 "$DJANGO_SOCKETS" "$DJANGO_USERS" $DJANGO_ARGS
fi

if [ ${#RESULTS[@]} -gt 0 ]; then
    {
        echo "# Herald vs peers — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo
        echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); one run, servers one after another; herald-bench on the same machine."
        echo "Latencies are p50 / p99 in ms. Parameters per server are in each JSON's \`params\`."
        echo
        "$BENCH" --combine "${RESULTS[@]}"
        INBOXES=()
        for r in "${RESULTS[@]}"; do
            [ -f "${r%.json}-inbox.json" ] && INBOXES+=("${r%.json}-inbox.json")
        done
        if [ ${#INBOXES[@]} -gt 0 ]; then
            echo
            echo "The list page of 50 for a user with $INBOX notifications against one with 50 (the inbox phase, a run of its own against the same server):"
            echo
            "$BENCH" --combine "${INBOXES[@]}"
        fi
    } > "$OUT/comparison.md"
    echo
    cat "$OUT/comparison.md"
fi
echo "results in $OUT"
