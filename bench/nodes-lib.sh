# Herald nodes on one PostgreSQL database and one Redis, for the bench scripts (sourced by
# nodes.sh and compare.sh; not run on its own).
#
#   hn_setup           a fresh database herald_bench_<random> (and a Redis channel prefix of the
#                      same name, so runs and test suites sharing this Redis do not hear each other)
#   hn_start N PORT LOGDIR
#                      starts N nodes on 127.0.0.1:PORT.. (the first alone: it migrates the
#                      database and creates the admin), waits until each answers /readyz;
#                      sets HN_URLS, HN_PIDS (arrays) and HN_URL_LIST, HN_PID_LIST (comma-separated)
#   hn_stop            stops the nodes (SIGTERM, then SIGKILL after 10 s)
#   hn_teardown        hn_stop, then drops the database
#
# Env in: HERALD (the binary), ADMIN_USER, ADMIN_PASS; PostgreSQL at 127.0.0.1:5432 as user
# postgres (trust), Redis at 127.0.0.1:6379. The abuse limits come from limits-off.env (sourced
# by the caller); the retention cap is lifted so a large inbox stays whole.

HN_PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p 5432 -U postgres)
HN_DB=""
HN_URLS=()
HN_PIDS=()
HN_URL_LIST=""
HN_PID_LIST=""

hn_setup() {
    HN_DB="herald_bench_$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')"
    "${HN_PSQL[@]}" -d postgres -c "CREATE DATABASE $HN_DB" >/dev/null
}

# The first free loopback port at or after $1 (nothing answers on it).
hn_free_port() {
    local p="$1"
    while [ "$p" -lt $(($1 + 200)) ]; do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
        p=$((p + 1))
    done
    echo "nodes: no free port in $1..$(($1 + 199))" >&2
    return 1
}

# hn_wait_ready URL PID: 120 s at most; fails if the node exits first.
hn_wait_ready() {
    local deadline=$((SECONDS + 120))
    while [ $SECONDS -lt $deadline ]; do
        kill -0 "$2" 2>/dev/null || return 1
        if curl -sf "$1/readyz" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    return 1
}

hn_start_one() { # index port logdir
    local port="$2" log="$3/node-$1.log"
    HERALD_BIND="127.0.0.1:$port" \
    HERALD_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$HN_DB" \
    HERALD_REDIS_URL=redis://127.0.0.1:6379 \
    HERALD_REDIS_CHANNEL_PREFIX="$HN_DB" \
    HERALD_RETENTION__MAX_PER_USER=0 \
    HERALD_ADMIN_USERNAME="$ADMIN_USER" HERALD_ADMIN_PASSWORD="$ADMIN_PASS" \
    RUST_LOG="${RUST_LOG:-warn}" "$HERALD" > "$log" 2>&1 &
    HN_PIDS+=("$!")
    HN_URLS+=("http://127.0.0.1:$port")
}

hn_start() { # nodes port logdir
    local n="$1" port="$2" dir="$3" i
    for i in $(seq 0 $((n - 1))); do
        port="$(hn_free_port "$port")" || return 1
        hn_start_one "$i" "$port" "$dir"
        port=$((port + 1))
        # The first node migrates the database alone (several at once would race).
        if [ "$i" = 0 ] || [ "$i" = $((n - 1)) ]; then
            local j
            for j in "${!HN_PIDS[@]}"; do
                if ! hn_wait_ready "${HN_URLS[$j]}" "${HN_PIDS[$j]}"; then
                    echo "nodes: node $j (${HN_URLS[$j]}) not ready; its log:" >&2
                    tail -20 "$dir/node-$j.log" >&2 || true
                    return 1
                fi
            done
        fi
    done
    HN_URL_LIST="$(IFS=,; echo "${HN_URLS[*]}")"
    HN_PID_LIST="$(IFS=,; echo "${HN_PIDS[*]}")"
}

hn_stop() {
    local pid
    for pid in "${HN_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${HN_PIDS[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    HN_PIDS=()
    HN_URLS=()
}

hn_teardown() {
    hn_stop
    if [ -n "$HN_DB" ]; then
        "${HN_PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $HN_DB WITH (FORCE)" >/dev/null 2>&1 || true
        HN_DB=""
    fi
}
