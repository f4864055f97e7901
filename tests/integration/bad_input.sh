#!/usr/bin/env bash
# Bad input over the real bus: every case gets an error reply with the right
# code, nothing is written, and the service keeps answering.
source "$(dirname "$0")/lib.sh" "$@"
"$PY" -c "import zmq" || fail "python3-zmq missing"
"$MOEBUS" domain add alpha --embed hash >/dev/null
printf '{"_id":"x1","title":"","text":"granite quarry stone"}\n' >"$WORK/a.jsonl"
start_serve
wait_live index.alpha; wait_live embed.alpha
"$MOEBUS" ingest -q alpha "$WORK/a.jsonl"
"$PY" "$(dirname "$0")/bad_input.py" "$MOEBUS_ENDPOINT" || fail "bad input cases"
"$MOEBUS" search --json "granite" >"$WORK/s.json" || fail "service stopped answering"
[ "$(json_get "$WORK/s.json" "j['results'][0]['doc_id']")" = x1 ] || fail "wrong result after bad input"
"$MOEBUS" call index.alpha '{"op":"stats"}' >"$WORK/st.json"
[ "$(json_get "$WORK/st.json" "j['chunks']")" = 1 ] || fail "bad input wrote something"
grep -q "killed by signal\|exited with status" "$LOG" && fail "a worker crashed on bad input"
true
