#!/usr/bin/env bash
# The ~30-line Python example client in proto/examples/ works against a real
# service, as PROTOCOL.md promises.
source "$(dirname "$0")/lib.sh" "$@"
"$PY" -c "import zmq" || fail "python3-zmq is not installed (deploy/bootstrap.sh installs it)"
"$MOEBUS" domain add notes --embed hash >/dev/null
printf '{"_id":"n1","title":"Kettle","text":"boil water in the kettle for tea"}\n{"_id":"n2","title":"Bike","text":"oil the chain of the bicycle"}\n' >"$WORK/n.jsonl"
start_serve
wait_live index.notes; wait_live embed.notes
"$MOEBUS" ingest -q notes "$WORK/n.jsonl"
"$PY" "$SRC/proto/examples/client.py" "$MOEBUS_ENDPOINT" "bicycle chain" >"$WORK/out.txt" || fail "client.py failed: $(cat "$WORK/out.txt")"
cat "$WORK/out.txt"
head -1 "$WORK/out.txt" | grep -q "notes.*n2" || fail "client.py did not print n2 first"
# and its error path: an unknown domain comes back as an error object
if "$PY" "$SRC/proto/examples/client.py" "$MOEBUS_ENDPOINT" "x" nosuch >"$WORK/err.txt"; then fail "expected failure"; fi
grep -q "unknown_domain" "$WORK/err.txt" || fail "client.py error: $(cat "$WORK/err.txt")"
