#!/usr/bin/env bash
# The broker is killed and restarted (by serve): every worker re-registers by
# itself within a few heartbeats and searches work again.
source "$(dirname "$0")/lib.sh" "$@"

"$MOEBUS" domain add solo --embed hash >/dev/null
printf '{"_id":"s1","title":"","text":"lighthouse on a rocky coast"}\n' >"$WORK/s.jsonl"
start_serve
wait_live index.solo; wait_live embed.solo
"$MOEBUS" ingest -q solo "$WORK/s.jsonl"

bpid=$(pgrep -f "moebus broker --endpoint $MOEBUS_ENDPOINT" | head -1)
[ -n "$bpid" ] || fail "no broker"
start=$(date +%s%N)
kill -KILL "$bpid"
sleep 0.3
for s in gate index.solo embed.solo; do wait_live "$s" 10; done
ms=$(( ($(date +%s%N) - start) / 1000000 ))
log "all workers re-registered ${ms} ms after the broker was killed (heartbeat ${MOEBUS_HEARTBEAT_MS} ms)"
# serve's restart backoff is 100 ms; re-registration must take a few heartbeats at most
[ $ms -lt $((MOEBUS_HEARTBEAT_MS * 10 + 1000)) ] || fail "re-registration took ${ms} ms"
"$MOEBUS" search --json "lighthouse" >"$WORK/s.json" || fail "search after broker restart"
[ "$(json_get "$WORK/s.json" "j['results'][0]['doc_id']")" = s1 ] || fail "wrong result"

# A standalone broker (not under serve) restarted on the same endpoint:
# the workers find it too.
stop_serve
PORT2=$((PORT + 1))
export MOEBUS_ENDPOINT="tcp://127.0.0.1:$PORT2"
"$MOEBUS" broker >>"$LOG" 2>&1 & b1=$!
"$MOEBUS" index --domain solo >>"$LOG" 2>&1 & w1=$!
wait_live index.solo 10
kill -KILL $b1; wait $b1 2>/dev/null || true
"$MOEBUS" broker >>"$LOG" 2>&1 & b2=$!
wait_live index.solo 10
kill -TERM $w1; wait $w1 || fail "index worker exit status"
kill -TERM $b2; wait $b2 || fail "broker exit status"
