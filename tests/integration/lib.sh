# tests/integration/lib.sh — shared by the integration tests (sourced).
# Usage in a test: source lib.sh "$@"   (args: MOEBUS_BIN PORT PYTHON SRC_DIR)
# Starts real processes on a real bus with a throw-away home; on exit stops
# them and fails the test if any process reported a sanitizer error.
set -euo pipefail
MOEBUS=$1
PORT=$2
PY=$3
SRC=$4
export MOEBUS_ENDPOINT="tcp://127.0.0.1:$PORT"
export MOEBUS_HEARTBEAT_MS="${MOEBUS_HEARTBEAT_MS:-200}"
WORK=$(mktemp -d /tmp/mb-it-XXXXXX)
export MOEBUS_HOME="$WORK/home"
SERVE_PID=""
LOG="$WORK/serve.log"

log() { printf '[%s] %s\n' "$(date +%T.%3N)" "$*"; }

fail() {
  echo "FAIL: $*"
  if [ -f "$LOG" ]; then echo "--- last lines of serve log"; tail -40 "$LOG"; fi
  exit 1
}

stop_serve() {
  if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
    kill -TERM "$SERVE_PID"
    for _ in $(seq 1 200); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$SERVE_PID" 2>/dev/null && { kill -KILL "$SERVE_PID"; echo "serve did not stop"; }
    wait "$SERVE_PID" 2>/dev/null || true
  fi
  SERVE_PID=""
}

on_exit() {
  local rc=$?
  stop_serve
  if [ -f "$LOG" ] && grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "$LOG"; then
    echo "FAIL: sanitizer report in the service log:"
    grep -B2 -A30 -E "AddressSanitizer|LeakSanitizer|runtime error:" "$LOG" | head -80
    rc=1
  fi
  rm -rf "$WORK"
  [ $rc -eq 0 ] && echo "PASS"
  exit $rc
}
trap on_exit EXIT

start_serve() {
  "$MOEBUS" serve >>"$LOG" 2>&1 &
  SERVE_PID=$!
  wait_live gate 20
}

# wait_live SERVICE [SECONDS]: until the broker reports a live worker.
wait_live() {
  local svc=$1 secs=${2:-20}
  local until=$((SECONDS + secs))
  while [ $SECONDS -lt $until ]; do
    if "$MOEBUS" call --timeout 1000 mmi.service "{\"service\":\"$svc\"}" 2>/dev/null |
      grep -q '"live": true'; then
      return 0
    fi
    sleep 0.1
  done
  fail "$svc did not come up within ${secs}s"
}

# json_get FILE EXPR: evaluates a Python expression on the parsed JSON `j`.
json_get() { "$PY" -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }
