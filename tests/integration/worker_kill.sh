#!/usr/bin/env bash
# A worker killed with SIGKILL while it holds a request: the client gets an
# answer within its deadline (partial, with the dead domain's error), other
# domains keep answering, and once `serve` has restarted the worker the same
# search succeeds in full.
source "$(dirname "$0")/lib.sh" "$@"

"$MOEBUS" domain add left --embed hash >/dev/null
"$MOEBUS" domain add right --embed hash >/dev/null
printf '{"_id":"l1","title":"","text":"volcano lava eruption magma"}\n' >"$WORK/l.jsonl"
printf '{"_id":"r1","title":"","text":"volcano ash cloud over the island"}\n' >"$WORK/r.jsonl"
start_serve
wait_live index.left; wait_live index.right; wait_live embed.left; wait_live embed.right
"$MOEBUS" ingest -q left "$WORK/l.jsonl"
"$MOEBUS" ingest -q right "$WORK/r.jsonl"

pid=$(pgrep -f "moebus index --domain left --home" | head -1)
[ -n "$pid" ] || fail "no index worker for left"
kill -STOP "$pid"   # it will receive the request and never answer
"$MOEBUS" search --json --timeout 4000 "volcano" >"$WORK/s1.json" &
client=$!
sleep 0.5           # the request is now held by the frozen worker
kill -KILL "$pid"
t0=$SECONDS
wait $client || true
took=$((SECONDS - t0))
[ $took -le 5 ] || fail "client waited ${took}s, past its deadline"
[ "$(json_get "$WORK/s1.json" "j['partial']")" = True ] || fail "expected a partial answer: $(cat "$WORK/s1.json")"
[ "$(json_get "$WORK/s1.json" "[r['domain'] for r in j['results']]")" = "['right']" ] || fail "right must still answer"
[ "$(json_get "$WORK/s1.json" "j['errors'][0]['domain']")" = left ] || fail "the error names the dead domain"
code=$(json_get "$WORK/s1.json" "j['errors'][0]['code']")
[ "$code" = unavailable ] || [ "$code" = timeout ] || fail "error code $code"
log "partial answer in <=${took}s with left: $code"

# serve restarts the worker; the same search then succeeds in full.
ok=0
for _ in $(seq 1 100); do
  if "$MOEBUS" search --json --timeout 2000 "volcano" >"$WORK/s2.json" 2>/dev/null &&
     [ "$(json_get "$WORK/s2.json" "sorted(r['domain'] for r in j['results'])")" = "['left', 'right']" ]; then
    ok=1; break
  fi
  sleep 0.2
done
[ $ok -eq 1 ] || fail "search did not recover after restart: $(cat "$WORK/s2.json")"
grep -q "index.left .* killed by signal 9" "$LOG" || fail "serve did not log the crash"
newpid=$(pgrep -f "moebus index --domain left --home" | head -1)
[ -n "$newpid" ] && [ "$newpid" != "$pid" ] || fail "worker was not restarted"
log "worker restarted as $newpid; full answer again"
