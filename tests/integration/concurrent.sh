#!/usr/bin/env bash
# Searches never fail or see half-written documents while documents are being
# replaced (see concurrent.py); the index worker serves with 2 threads.
source "$(dirname "$0")/lib.sh" "$@"
"$PY" -c "import zmq" || fail "python3-zmq missing"
"$MOEBUS" domain add conc --dim 16 --embed hash >/dev/null
start_serve
wait_live index.conc
"$PY" "$(dirname "$0")/concurrent.py" "$MOEBUS_ENDPOINT" conc 60 || fail "concurrent search + ingest"
