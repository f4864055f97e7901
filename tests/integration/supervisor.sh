#!/usr/bin/env bash
# The supervisor: a worker that crashes at every start is given up on,
# loudly, after 5 fast crashes while everything else keeps answering; a second
# `serve` on the same home is refused; `moebus status` shows processes and
# services; lazy experts (--max-loaded-experts 1) start embed workers on
# demand, keep at most one loaded and answer every search (cold-start latency
# printed).
source "$(dirname "$0")/lib.sh" "$@"
"$MOEBUS" domain add good --embed hash >/dev/null
"$MOEBUS" domain add bad --embed hash >/dev/null
head -c 8192 /dev/urandom >"$MOEBUS_HOME/domains/bad/store.db" # not a database
echo "Penguins huddle for warmth in the Antarctic winter." >"$WORK/p.txt"
start_serve
wait_live index.good
"$MOEBUS" ingest -q good "$WORK/p.txt" || fail "ingest good"

# bad's index worker dies at every start: given up on after 5 fast crashes
for _ in $(seq 1 150); do
  grep -q "index.bad .*GIVING UP" "$LOG" && break
  sleep 0.1
done
grep -q "index.bad .*GIVING UP" "$LOG" || fail "serve did not give up on index.bad"
[ "$(grep -c "index.bad (pid [0-9]*) exited with status 1" "$LOG")" -eq 5 ] ||
  fail "expected exactly 5 restarts before giving up: $(grep index.bad "$LOG" | tail -8)"
sleep 1.2 # the status file is rewritten each second
"$MOEBUS" status >"$WORK/status.txt" || fail "status"
cat "$WORK/status.txt"
grep -qE "^index\.bad +gave-up" "$WORK/status.txt" || fail "status does not show gave-up"
grep -qE "^index\.good +running" "$WORK/status.txt" || fail "status: index.good"
grep -qE "^gate +1 " "$WORK/status.txt" || fail "status: no gate service line"
"$MOEBUS" search --json --domain good "penguins" >"$WORK/s.json" || fail "search while bad is down"
[ "$(json_get "$WORK/s.json" "len(j['results'])")" -ge 1 ] || fail "good does not answer"
log "gave up on index.bad; good answers"

# fixing it through the catalog (remove + add with fresh data) retries it
"$MOEBUS" domain remove bad --purge >/dev/null || fail "remove bad"
"$MOEBUS" domain add bad --embed hash >/dev/null || fail "add bad again"
wait_live index.bad 20
log "bad is back after remove --purge + add"

# a second serve on this home is refused, and the first keeps running
rc=0; "$MOEBUS" serve >"$WORK/serve2.log" 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "a second serve on the same home started"
grep -q "already served by pid $SERVE_PID" "$WORK/serve2.log" || fail "refusal: $(cat "$WORK/serve2.log")"
"$MOEBUS" search --json --domain good "penguins" >/dev/null || fail "the first serve was disturbed"
stop_serve
log "second serve refused"

# lazy experts: at most one embed worker loaded
for d in l1 l2 l3; do
  "$MOEBUS" domain add $d --embed hash >/dev/null
  echo "Lazy $d document about topic$d and penguins." >"$WORK/$d.txt"
done
"$MOEBUS" serve --max-loaded-experts 1 >>"$LOG" 2>&1 &
SERVE_PID=$!
wait_live gate 20
for d in l1 l2 l3; do
  wait_live index.$d
  "$MOEBUS" ingest -q $d "$WORK/$d.txt" || fail "ingest $d with a cold expert"
done
"$PY" - "$MOEBUS_ENDPOINT" <<'PY' || fail "lazy experts"
import json, sys, time, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.DEALER)
s.setsockopt(zmq.LINGER, 0)
s.connect(sys.argv[1])
n = 0
def search(dom):
    global n
    n += 1
    t = time.monotonic()
    s.send_multipart([b"MDPC02", b"\x01", b"gate", json.dumps(
        {"op": "search", "query": f"topic{dom}", "domains": [dom], "id": n}).encode()])
    while True:
        r = json.loads(s.recv_multipart()[3])
        if r.get("id") == n:
            break
    ms = (time.monotonic() - t) * 1000
    assert r.get("ok") and not r.get("partial"), r
    assert r["results"] and r["results"][0]["domain"] == dom, r
    return ms
cold, warm = [], []
for rnd in range(4):
    for d in ("l1", "l2", "l3"):
        cold.append(search(d))   # the previous domain's expert is loaded: cold
        warm.append(search(d))   # same domain again: warm
cold.sort(); warm.sort()
print(f"lazy experts: cold-start search median {cold[len(cold)//2]:.0f} ms "
      f"(max {cold[-1]:.0f}), warm median {warm[len(warm)//2]:.1f} ms, "
      f"{len(cold) + len(warm)} searches, 0 failed")
assert warm[len(warm)//2] < cold[len(cold)//2]
PY
sleep 1.2
"$MOEBUS" status >"$WORK/status.txt" || fail "status"
loaded=$(grep -cE "^embed\.l[123] +running" "$WORK/status.txt" || true)
[ "$loaded" -le 1 ] || fail "$loaded embed workers loaded with --max-loaded-experts 1: $(cat "$WORK/status.txt")"
grep -q "cold start on demand" "$LOG" || fail "no cold start logged"
grep -q "unloading (least recently used" "$LOG" || fail "no unload logged"
log "lazy experts: $(grep -c 'cold start on demand' "$LOG") cold starts"
