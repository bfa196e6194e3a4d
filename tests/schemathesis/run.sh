#!/usr/bin/env bash
# Property-based run of schemathesis against a running herald, driven by its own
# /api/openapi.json: fails on any 5xx and on any reply that breaks the document (status code,
# content type, headers or body not as documented). Bounded: few examples per operation and a
# hard time limit. Called by .ci/run; runnable alone:
#   HERALD_BIN=$CARGO_TARGET_DIR/debug/herald bash tests/schemathesis/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

SCHEMATHESIS_VERSION=4.32.5
VENV="${HERALD_SCHEMATHESIS_VENV:-$HOME/.cache/herald-schemathesis}"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-30}"
TIME_LIMIT_SECS="${SCHEMATHESIS_TIME_LIMIT_SECS:-600}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/herald-target}"

# schemathesis, pinned, in a virtualenv of its own (Python 3.11 or newer).
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

if [ -z "${HERALD_BIN:-}" ]; then
  cargo build --bin herald
  HERALD_BIN="$CARGO_TARGET_DIR/debug/herald"
fi

workdir=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$workdir"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
admin_password="schemathesis-$RANDOM$RANDOM"

# A fresh SQLite file, an admin, and the abuse limits off: the run registers and logs in far
# more often than one client would, and the limits are tested elsewhere.
# shellcheck source=/dev/null
source bench/limits-off.env
HERALD_BIND="127.0.0.1:$port" \
  HERALD_DATABASE_URL="sqlite://$workdir/herald.sqlite3?mode=rwc" \
  HERALD_ADMIN_USERNAME=fuzzadmin HERALD_ADMIN_PASSWORD="$admin_password" \
  RUST_LOG=warn \
  "$HERALD_BIN" >"$workdir/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 100); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$workdir/server.log" >&2; echo "herald exited" >&2; exit 1; }
  sleep 0.1
done

token=$(curl -fsS "$base/api/auth/login/" -H 'Content-Type: application/json' \
  -d "{\"username\":\"fuzzadmin\",\"password\":\"$admin_password\"}" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')

# What must hold for every reply: no 5xx; status, content type, headers and body as documented;
# a method the document does not list answers 405 with a true Allow header; an operation that
# declares security refuses a request without credentials. (`negative_data_rejection` and
# `positive_data_acceptance` are not run: a schema cannot say that `user_id` must name a user.)
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,unsupported_method,allow_header_conformance,ignored_auth,missing_required_header

# Something for the id operations to find besides the ids schemathesis makes up.
curl -fsS "$base/api/global-notifications/" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"title":"Fuzz","message":"an announcement to update","level":"info"}' >/dev/null
curl -fsS "$base/api/notifications/" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"user_id":1,"title":"Fuzz","message":"a notification to mark read","notification_type":"system"}' >/dev/null

# Logout is left out of the main run (it would revoke the token every other operation runs
# with) and gets a run of its own with a login of its own. Run from the temporary directory: schemathesis and hypothesis keep their caches in the cwd.
status=0
(cd "$workdir" && timeout --signal=INT --kill-after=30 "$TIME_LIMIT_SECS" \
  "$VENV/bin/schemathesis" run "$base/api/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks "$CHECKS" \
  --exclude-operation-id logout \
  --max-examples "$MAX_EXAMPLES" \
  --workers 2 \
  --seed 20261201 \
  --no-color) || status=$?

logout_token=$(curl -fsS "$base/api/auth/login/" -H 'Content-Type: application/json' \
  -d "{\"username\":\"fuzzadmin\",\"password\":\"$admin_password\"}" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
(cd "$workdir" && timeout --signal=INT --kill-after=30 "$TIME_LIMIT_SECS" \
  "$VENV/bin/schemathesis" run "$base/api/openapi.json" \
  --header "Authorization: Bearer $logout_token" \
  --checks "$CHECKS" \
  --include-operation-id logout \
  --max-examples "$MAX_EXAMPLES" \
  --seed 20261201 \
  --no-color) || status=$?

# The server's own errors (actix's "invalid Header" lines for the NUL bytes sent on purpose are not).
if grep -qE 'panicked| ERROR herald' "$workdir/server.log"; then
  echo "the server logged errors during the run:" >&2
  grep -E 'panicked| ERROR herald' "$workdir/server.log" | head -n 20 >&2
  status=1
fi
if [ "$status" -eq 124 ] || [ "$status" -eq 130 ]; then
  echo "schemathesis did not finish within ${TIME_LIMIT_SECS}s" >&2
fi
exit "$status"
