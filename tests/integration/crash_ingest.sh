#!/usr/bin/env bash
# Crash safety: the index worker SIGKILLed 25 times during a large ingest
# (see crash_ingest.py for what is checked afterwards).
export MOEBUS_HEARTBEAT_MS=100
source "$(dirname "$0")/lib.sh" "$@"
"$PY" -c "import zmq" || fail "python3-zmq missing"
"$MOEBUS" domain add crash --dim 16 --embed hash >/dev/null
"$MOEBUS" broker --wait 20000 >>"$LOG" 2>&1 &
BROKER=$!
trap 'kill $BROKER 2>/dev/null; wait $BROKER 2>/dev/null; on_exit' EXIT
"$PY" "$(dirname "$0")/crash_ingest.py" "$MOEBUS" "$MOEBUS_ENDPOINT" "$MOEBUS_HOME" crash 25 ||
  { tail -30 "$MOEBUS_HOME/worker.log"; fail "crash test"; }
grep -c "rebuilding" "$MOEBUS_HOME/worker.log" | sed 's/^/FAISS rebuilds after kills: /'
cat "$MOEBUS_HOME/worker.log" >>"$LOG" # sanitizer reports are checked on exit
