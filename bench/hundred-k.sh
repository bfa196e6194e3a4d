#!/usr/bin/env bash
# 100,000 sockets on this box: issue 21's shape. Several Herald nodes on one PostgreSQL and one
# Redis (bench/nodes.sh), and herald-bench with as many listener processes as the
# 20,000-descriptor limit needs; each listener registers its share of the users and opens its
# share of the sockets over every node, from source addresses 127.0.0.2.. (one address's
# ephemeral ports would not be enough). herald-bench itself creates each global round and
# merges the listeners' reports. A round counts only if it reached every socket exactly once.
#
#   bench/hundred-k.sh [options] [-- extra herald-bench args]
#
# Options (defaults: the issue's shape):
#   --nodes N        Herald nodes                                   (default 6)
#   --sockets S      sockets in all                                 (default 100000)
#   --listeners L    tool processes holding them (each ≤ 18,000)    (default 6)
#   --users U        users, split over the listeners                (default 1000)
#   --rounds R       global rounds                                  (default 5)
#   --out DIR        results and the nodes' logs   (default /tmp/herald-100k-DATE)
#   --no-build       use the already built release binaries
# Reports (hundred-k.txt / hundred-k.json in --out): sockets open, per node and per listener;
# rounds complete; global fan-out p99 and deliveries/s over all sockets; server KiB per socket
# (the nodes' summed RSS growth over the connect phase / sockets). Exits non-zero on any lost,
# duplicated or failed socket.
# Env: as bench/nodes.sh.
set -euo pipefail

NODES=6
SOCKETS=100000
LISTENERS=6
USERS=1000
ROUNDS=5
OUT=""
BUILD=()
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --nodes) NODES="$2"; shift 2 ;;
        --sockets) SOCKETS="$2"; shift 2 ;;
        --listeners) LISTENERS="$2"; shift 2 ;;
        --users) USERS="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --no-build) BUILD=(--no-build); shift ;;
        --) shift; EXTRA=("$@"); break ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "hundred-k.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
for v in NODES SOCKETS LISTENERS USERS ROUNDS; do
    case "${!v}" in ''|*[!0-9]*) echo "hundred-k.sh: --${v,,} must be a number" >&2; exit 2 ;; esac
done
if [ "$LISTENERS" -lt 1 ]; then echo "hundred-k.sh: --listeners is at least 1" >&2; exit 2; fi
# Each process (node or listener) holds its share of the sockets plus some headroom.
share=$(( (SOCKETS + LISTENERS - 1) / LISTENERS ))
node_share=$(( (SOCKETS + NODES - 1) / NODES ))
if [ "$share" -gt 18000 ] || [ "$node_share" -gt 18000 ]; then
    echo "hundred-k.sh: $SOCKETS sockets need more listeners or nodes (each holds ≤ 18,000; now $share per listener, $node_share per node)" >&2
    exit 2
fi
# Memory: 10,000 sockets over 2 nodes measured 3–6 KiB per socket in a node and about 6.5 KiB
# in a listener (its RSS over its sockets); ask for twice that, and 1 GiB besides.
need_kib=$(( SOCKETS * 25 + 1048576 ))
avail_kib="$(awk '/MemAvailable/ {print $2}' /proc/meminfo)"
if [ "$avail_kib" -lt "$need_kib" ]; then
    echo "hundred-k.sh: $((avail_kib / 1024)) MiB available, $((need_kib / 1024)) MiB wanted for $SOCKETS sockets" >&2
    exit 1
fi
OUT="${OUT:-/tmp/herald-100k-$(date +%Y%m%d-%H%M%S)}"

# Setting up 100,000 sockets and registering the users takes minutes on 2 cores: long bounds.
"$(dirname "$0")/nodes.sh" --nodes "$NODES" --sockets "$SOCKETS" --users "$USERS" \
    --listeners "$LISTENERS" --label hundred-k --out "$OUT" "${BUILD[@]}" -- \
    --phases connect,global --rounds "$ROUNDS" --timeout 120 --setup-timeout 1800 \
    --source-addrs 16 "${EXTRA[@]}"
python3 - "$OUT/hundred-k.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
c, g = r["connect"], r["global"]
nodes = ", ".join(f'{n["sockets"]}' for n in r["nodes"])
print(f'hundred-k: {c["connected"]}/{c["requested"]} sockets on {len(r["nodes"])} nodes ({nodes}), '
      f'{len(r["listeners"])} tool processes; {g["complete_rounds"]}/{len(g["rounds"])} rounds reached every socket once '
      f'(lost {g["lost"]}, duplicated {g["duplicated"]}); p99 {g["latency"]["p99_ms"] if g["latency"] else "n/a"} ms; '
      f'{g["deliveries_per_s"]} deliveries/s; {c["server_kib_per_socket"]} KiB per socket')
EOF
