#!/usr/bin/env bash
# The expert lifecycle with real processes: a builtin domain is searched
# lexically until it has text enough to fit, fits by itself when writes go
# quiet, refits on request; set-expert switches it to an http expert (a real
# local HTTP server) by re-embedding in the background; an index worker
# SIGKILLed in the middle of a re-embed resumes it on restart and never
# leaves a mixed index; searches keep answering throughout.
source "$(dirname "$0")/lib.sh" "$@"
export MOEBUS_FIT_QUIET_MS=300 MOEBUS_HTTP_BATCH=16

"$PY" - "$WORK" <<'PY'
import json, random, sys
random.seed(7)
topics = {"bake": "bread dough flour yeast oven crust knead loaf rye starter".split(),
          "sky": "telescope star galaxy nebula orbit planet comet moon eclipse".split(),
          "code": "compiler parser lexer syntax token grammar linker debugger".split()}
with open(sys.argv[1] + "/small.jsonl", "w") as a, open(sys.argv[1] + "/more.jsonl", "w") as b:
    for i in range(330):
        t = list(topics)[i % 3]
        words = random.sample(topics[t], 5) + random.sample(sum(topics.values(), []), 2)
        doc = {"_id": f"{t}-{i}", "title": "", "text": " ".join(words)}
        (a if i < 30 else b).write(json.dumps(doc) + "\n")
PY
"$MOEBUS" domain add life >/dev/null
start_serve
wait_live index.life; wait_live embed.life

# 30 documents: below the fit minimum (100 chunks), searched lexically.
"$MOEBUS" ingest -q life "$WORK/small.jsonl"
"$MOEBUS" search --json "yeast dough" >"$WORK/s0.json" || fail "search before fit"
[ "$(json_get "$WORK/s0.json" "j['notes']['life']")" = "expert not fitted yet: lexical only" ] ||
  fail "no 'not fitted' note: $(cat "$WORK/s0.json")"
[ "$(json_get "$WORK/s0.json" "j['results'][0]['doc_id'].split('-')[0]")" = bake ] || fail "lexical hit"
if "$MOEBUS" search --json --mode dense "yeast dough" >"$WORK/s0d.json"; then fail "dense before fit"; fi

# 300 more: the worker fits once writes are quiet, and re-embeds everything.
"$MOEBUS" ingest -q life "$WORK/more.jsonl"
wait_expert() { # wait_expert PATTERN: until stats show it, idle, all embedded
  for _ in $(seq 1 300); do
    "$MOEBUS" call index.life '{"op":"stats"}' >"$WORK/st.json" 2>/dev/null || true
    if [ -s "$WORK/st.json" ] && [ "$(json_get "$WORK/st.json" \
      "j['job']['state'] == 'idle' and j['expert'].startswith('$1') and j['vectors_stored'] == j['chunks'] == 330")" = True ]; then
      return 0
    fi
    sleep 0.1
  done
  fail "expert $1 not ready: $(cat "$WORK/st.json")"
}
wait_expert lsa-
v1=$(json_get "$WORK/st.json" "j['expert']")
[ -f "$MOEBUS_HOME/domains/life/expert.json" ] || fail "no expert.json"
"$MOEBUS" search --json --mode dense "telescope nebula" >"$WORK/s1.json" || fail "dense after fit"
[ "$(json_get "$WORK/s1.json" "j['results'][0]['doc_id'].split('-')[0]")" = sky ] || fail "dense hit: $(cat "$WORK/s1.json")"
[ "$(json_get "$WORK/s1.json" "'notes' in j")" = False ] || fail "note after fit"

# An explicit refit makes a new version.
"$MOEBUS" domain refit life --wait >/dev/null || fail "refit"
wait_expert lsa-
[ "$(json_get "$WORK/st.json" "j['expert']")" != "$v1" ] || fail "refit kept version $v1"
ls "$MOEBUS_HOME"/domains/life/expert-*.bin | wc -l | grep -qx 1 || fail "old model files left"

# set-expert to an http server: re-embedded in the background, then swapped.
"$PY" "$SRC/tests/unit/fake_embed_server.py" 0 256 >"$WORK/fake.out" &
FAKE=$!
trap 'kill $FAKE 2>/dev/null; on_exit' EXIT
for _ in $(seq 1 50); do grep -q ready "$WORK/fake.out" && break; sleep 0.1; done
FPORT=$(awk '{print $2}' "$WORK/fake.out")
"$MOEBUS" domain set-expert life --embed http --url "http://127.0.0.1:$FPORT/v1" --model ok --wait >/dev/null ||
  fail "set-expert http"
wait_expert http:ok:d256
"$MOEBUS" search --json --mode dense "telescope nebula" >"$WORK/s2.json" || fail "dense via http"
[ "$(json_get "$WORK/s2.json" "len(j['results'])")" = 10 ] || fail "http dense results"

# Kill the index worker in the middle of the next re-embed (0.3 s per
# request): the restarted worker resumes it; searches answer meanwhile.
"$MOEBUS" domain set-expert life --embed http --url "http://127.0.0.1:$FPORT/v1" --model slowish >/dev/null
for _ in $(seq 1 100); do
  "$MOEBUS" call index.life '{"op":"stats"}' >"$WORK/st.json" 2>/dev/null || true
  [ "$(json_get "$WORK/st.json" "j['job']['state'] == 'embedding' and j['job']['done'] >= 16")" = True ] && break
  sleep 0.05
done
[ "$(json_get "$WORK/st.json" "j['job']['state']")" = embedding ] || fail "re-embed not seen running"
"$MOEBUS" search --json "yeast dough" >"$WORK/s3.json" || fail "search during re-embed"
[ "$(json_get "$WORK/s3.json" "j['results'][0]['doc_id'].split('-')[0]")" = bake ] || fail "old expert answers"
pkill -KILL -f "moebus index --domain life" || fail "no index worker to kill"
wait_live index.life 20
wait_expert http:slowish:d256
grep -q "resuming the re-embed" "$LOG" || fail "the restarted worker did not resume"
"$MOEBUS" search --json "yeast dough" >"$WORK/s4.json" || fail "search after resume"
[ "$(json_get "$WORK/s4.json" "j['partial']")" = False ] || fail "partial after resume"
