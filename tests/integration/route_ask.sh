#!/usr/bin/env bash
# The learned router, the retrieval gate and ask, end to end on real
# processes: the router trains itself from three domains, routes unseen
# queries, honours request overrides, retrains when a domain is added and
# reloads its persisted model after a crash; ask answers extractively, then
# through a generate worker calling a real local HTTP chat server, and falls
# back (marked partial) when the generator returns garbage or hangs; the
# gate's internal decision; cost accounting; bad input.
source "$(dirname "$0")/lib.sh" "$@"

# a local OpenAI-compatible chat server
"$PY" "$SRC/tests/unit/fake_embed_server.py" 0 16 >"$WORK/fake.out" 2>&1 &
FAKE=$!
# (set +e: under -e the `(exit $rc)` that hands on_exit the status would end
# the trap before it stops the service)
trap 'rc=$?; set +e; kill $FAKE 2>/dev/null; (exit $rc); on_exit' EXIT
for _ in $(seq 1 50); do grep -q ready "$WORK/fake.out" 2>/dev/null && break; sleep 0.1; done
FPORT=$(awk '/ready/ {print $2}' "$WORK/fake.out")
[ -n "$FPORT" ] || fail "fake chat server did not start"

# three domains with their own vocabularies (and some shared words)
"$PY" - "$WORK" <<'PY'
import json, random, sys
random.seed(5)
vocab = {
 "cooking": "saucepan simmer garlic braise oven whisk dough saffron marinade skillet broth caramel pastry ginger roast vinegar".split(),
 "astronomy": "nebula telescope orbit galaxy comet asteroid pulsar quasar redshift planet eclipse meteor supernova lunar solar cosmic".split(),
 "law": "plaintiff statute verdict tort appeal jury contract lawsuit defendant clause court judge liability testimony warrant subpoena".split(),
 "music": "melody chord rhythm tempo violin sonata harmony octave symphony piano guitar chorus lyric tenor cello opera".split(),
}
shared = "the great time people world small large light heavy often".split()
for name, words in vocab.items():
    with open(f"{sys.argv[1]}/{name}.jsonl", "w") as f:
        for i in range(60):
            text = " ".join(random.choice(words) if k % 3 else random.choice(shared) for k in range(14)) + "."
            f.write(json.dumps({"_id": f"{name}{i}", "title": "", "text": text}) + "\n")
PY
for d in cooking astronomy law; do "$MOEBUS" domain add $d --embed hash >/dev/null; done
start_serve
wait_live router
for d in cooking astronomy law; do
  wait_live index.$d
  "$MOEBUS" ingest $d "$WORK/$d.jsonl" 2>/dev/null || fail "ingest $d"
done

# router_has N NAME...: until the router's model covers the names
router_has() {
  local secs=$1; shift
  local until=$((SECONDS + secs))
  while [ $SECONDS -lt $until ]; do
    if "$MOEBUS" router status --json >"$WORK/rs.json" 2>/dev/null &&
      [ "$(json_get "$WORK/rs.json" "all(d in (j.get('domains') or []) for d in '$*'.split()) and j['state'] != 'training'")" = True ]; then
      return 0
    fi
    sleep 0.2
  done
  fail "router does not cover $* after ${secs}s: $(cat "$WORK/rs.json")"
}
router_has 30 cooking astronomy law
log "router trained: $(json_get "$WORK/rs.json" "j['model']")"

# --- routing
"$MOEBUS" route --json "comet orbit near the galaxy" >"$WORK/r1.json" || fail "route"
[ "$(json_get "$WORK/r1.json" "max(j['scores'], key=j['scores'].get)")" = astronomy ] || fail "route top: $(cat "$WORK/r1.json")"
[ "$(json_get "$WORK/r1.json" "abs(sum(j['scores'].values()) - 1) < 1e-6")" = True ] || fail "probabilities sum to 1"
[ "$(json_get "$WORK/r1.json" "j['chosen'][0]")" = astronomy ] || fail "chosen"
"$MOEBUS" route "jury verdict appeal" | grep -q "^  \* law" || fail "human route output"
# "exclude" (what the gate sends for disabled domains): out of the choice, but
# the gate's p_in is the same as without it
"$MOEBUS" call router '{"op":"route","query":"comet orbit near the galaxy","exclude":["astronomy"]}' >"$WORK/rx.json" || fail "route exclude"
[ "$(json_get "$WORK/rx.json" "('astronomy' not in j['chosen'], j['scores']['astronomy'] == 0)")" = "(True, True)" ] || fail "exclude: $(cat "$WORK/rx.json")"
[ "$(json_get "$WORK/rx.json" "abs(j['gate']['p_in'] - $(json_get "$WORK/r1.json" "j['gate']['p_in']")) < 1e-9")" = True ] || fail "exclude changed the gate: $(cat "$WORK/rx.json")"
"$MOEBUS" route --json --router pilot "saucepan garlic" >"$WORK/r2.json"
[ "$(json_get "$WORK/r2.json" "(j['router'], max(j['scores'], key=j['scores'].get))")" = "('pilot', 'cooking')" ] || fail "pilot: $(cat "$WORK/r2.json")"

# --- routed search: the trace carries the router's scores and the gate's decision
"$MOEBUS" call gate '{"op":"search","query":"plaintiff sued under the statute","k":5}' >"$WORK/s1.json"
[ "$(json_get "$WORK/s1.json" "j['results'][0]['domain']")" = law ] || fail "routed search: $(cat "$WORK/s1.json")"
[ "$(json_get "$WORK/s1.json" "(j['gate']['decision'], j['router']['model'].startswith('router-'), 'law' in j['router']['scores'])")" = "('retrieve', True, True)" ] || fail "trace"
[ "$(json_get "$WORK/s1.json" "j['domains_searched'] == len(j['gate']['domains']) >= 1 and 'p_in' in j['gate'] and 'coverage' in j['gate']['features']")" = True ] || fail "gate trace"
# overrides: a tiny p searches one domain; max_domains; a shared domain is always searched
"$MOEBUS" call gate '{"op":"search","query":"plaintiff statute","p":0.01}' >"$WORK/s2.json"
[ "$(json_get "$WORK/s2.json" "j['gate']['domains']")" = "['law']" ] || fail "p override: $(cat "$WORK/s2.json")"
"$MOEBUS" call gate '{"op":"search","query":"the great world","p":1.0,"max_domains":2}' >"$WORK/s3.json"
[ "$(json_get "$WORK/s3.json" "j['domains_searched']")" = 2 ] || fail "max_domains"
"$MOEBUS" call gate '{"op":"search","query":"plaintiff statute","p":0.01,"shared":"cooking"}' >"$WORK/s4.json"
[ "$(json_get "$WORK/s4.json" "sorted(j['gate']['domains'])")" = "['cooking', 'law']" ] || fail "shared: $(cat "$WORK/s4.json")"

# --- bad input: clear errors, the service keeps answering
bad() { # bad CODE JSON
  if "$MOEBUS" call gate "$2" >"$WORK/bad.json" 2>/dev/null; then fail "accepted: $2"; fi
  [ "$(json_get "$WORK/bad.json" "j['error']['code']")" = "$1" ] || fail "expected $1 for $2: $(cat "$WORK/bad.json")"
}
bad bad_request '{"op":"search","query":""}'
bad bad_request '{"op":"ask","query":""}'
bad bad_request '{"op":"search","query":"x","p":1.5}'
bad bad_request '{"op":"search","query":"x","p":0}'
bad bad_request '{"op":"search","query":"x","max_domains":0}'
bad bad_request '{"op":"search","query":"x","router":"magic"}'
bad bad_request '{"op":"search","query":"x","retrieve":"sometimes"}'
bad bad_request '{"op":"search","query":"x","gate_threshold":2}'
bad unknown_domain '{"op":"search","query":"x","domains":["nosuch"]}'
bad unknown_domain '{"op":"search","query":"x","shared":"nosuch"}'
"$PY" -c "import json; print(json.dumps({'op':'search','query':'a'*20000}))" >"$WORK/big.json"
bad bad_request "$(cat "$WORK/big.json")"
"$MOEBUS" call gate '{"op":"search","query":"comet"}' >/dev/null || fail "gate stopped answering after bad input"

# --- ask without a generator: an extractive answer with citations
"$MOEBUS" ask --json "what does the telescope see of the nebula" >"$WORK/a1.json" || fail "ask"
[ "$(json_get "$WORK/a1.json" "(j['answer_kind'], len(j['citations']) > 0, '[1]' in j['answer'])")" = "('extractive', True, True)" ] || fail "extractive: $(cat "$WORK/a1.json")"
[ "$(json_get "$WORK/a1.json" "j['citations'][0]['domain']")" = astronomy ] || fail "citation domain"

# --- a generator: generate worker calling the local chat server
"$MOEBUS" generator add g1 --url "http://127.0.0.1:$FPORT/v1" --model ok >/dev/null
"$MOEBUS" generator add bad --url "http://127.0.0.1:$FPORT" --model garbage >/dev/null
"$MOEBUS" generator add hang --url "http://127.0.0.1:$FPORT/v1/chat/completions" --model hang >/dev/null
if "$MOEBUS" generator add x --url "ftp://nope" --model m 2>/dev/null; then fail "ftp url accepted"; fi
"$MOEBUS" generator list | grep -q "^g1 " || fail "generator list"
"$MOEBUS" config set ask.generator g1 >/dev/null
wait_live generate.g1 20; wait_live generate.bad 20; wait_live generate.hang 20
"$MOEBUS" ask --json "plaintiff and the statute" >"$WORK/a2.json" || fail "ask g1"
[ "$(json_get "$WORK/a2.json" "(j['answer_kind'], j['generator'], j['partial'])")" = "('generated', 'g1', False)" ] || fail "generated: $(cat "$WORK/a2.json")"
[ "$(json_get "$WORK/a2.json" "j['answer'].startswith('ANSWER(') and not j['answer'].startswith('ANSWER(0') and j['answer'].endswith('[1]')")" = True ] || fail "prompt carried passages: $(json_get "$WORK/a2.json" "j['answer']")"
[ "$(json_get "$WORK/a2.json" "j['timings']['generate_us'] > 0")" = True ] || fail "generate timing"
# garbage from the generator: extractive, marked partial, the error says why
"$MOEBUS" ask --json --generator bad "plaintiff and the statute" >"$WORK/a3.json" 2>/dev/null || fail "ask bad"
[ "$(json_get "$WORK/a3.json" "(j['answer_kind'], j['partial'], j['errors'][0]['stage'], j['errors'][0]['code'])")" = "('extractive', True, 'generate', 'internal')" ] || fail "garbage: $(cat "$WORK/a3.json")"
# a hanging generator: the gate answers within the request's deadline
t0=$(date +%s%N)
"$MOEBUS" call --timeout 10000 gate '{"op":"ask","query":"plaintiff statute","generator":"hang","timeout_ms":1500}' >"$WORK/a4.json" || fail "ask hang"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$(json_get "$WORK/a4.json" "(j['answer_kind'], j['partial'], j['errors'][0]['code'])")" = "('extractive', True, 'timeout')" ] || fail "hang: $(cat "$WORK/a4.json")"
[ $ms -lt 4000 ] || fail "hanging generator held the ask for $ms ms"
log "hanging generator: answered in $ms ms (deadline 1500 ms)"

# --- the gate's internal decision
"$MOEBUS" call gate '{"op":"search","query":"comet","gate_threshold":1.0}' >"$WORK/i1.json"
[ "$(json_get "$WORK/i1.json" "(j['gate']['decision'], j['results'], j['domains_searched'], 'threshold' in j['gate']['reason'])")" = "('internal', [], 0, True)" ] || fail "internal search: $(cat "$WORK/i1.json")"
"$MOEBUS" ask --json --retrieve never "who wrote the symphony" >"$WORK/i2.json"
[ "$(json_get "$WORK/i2.json" "(j['answer_kind'], j['citations'], j['answer'].startswith('ANSWER(0 passages)'))")" = "('internal', [], True)" ] || fail "internal ask: $(cat "$WORK/i2.json")"
"$MOEBUS" config set ask.generator nosuch >/dev/null
"$MOEBUS" generator remove g1 >/dev/null; "$MOEBUS" generator remove bad >/dev/null; "$MOEBUS" generator remove hang >/dev/null
"$MOEBUS" config unset ask.generator >/dev/null
"$MOEBUS" ask --json --retrieve never "who wrote the symphony" >"$WORK/i3.json"
[ "$(json_get "$WORK/i3.json" "(j['answer_kind'], 'no indexed domain covers' in j['answer'].lower(), 'no internal expert' in j['answer'])")" = "('none', True, True)" ] || fail "no generator: $(cat "$WORK/i3.json")"

# --- cost accounting
"$MOEBUS" stats --json >"$WORK/st.json" || fail "stats"
[ "$(json_get "$WORK/st.json" "(j['gate']['queries'] >= 10, 0 < j['gate']['skipped_retrieval_share'] < 1, j['gate']['avg_domains_searched'] > 0)")" = "(True, True, True)" ] || fail "stats: $(cat "$WORK/st.json")"
"$MOEBUS" stats | grep -q "skipped retrieval" || fail "stats table"

# --- a new domain: searched at once (not in the model yet), then routed
"$MOEBUS" domain add music --embed hash >/dev/null
wait_live index.music
"$MOEBUS" ingest music "$WORK/music.jsonl" 2>/dev/null || fail "ingest music"
t0=$SECONDS
"$MOEBUS" call gate '{"op":"search","query":"violin sonata tempo","k":3}' >"$WORK/m1.json"
[ "$(json_get "$WORK/m1.json" "'music' in j['gate']['domains']")" = True ] || fail "new domain not searched: $(cat "$WORK/m1.json")"
router_has 30 cooking astronomy law music
log "router retrained with music after $((SECONDS - t0)) s"
"$MOEBUS" route --json "violin sonata tempo" >"$WORK/m2.json"
[ "$(json_get "$WORK/m2.json" "max(j['scores'], key=j['scores'].get)")" = music ] || fail "music route: $(cat "$WORK/m2.json")"

# --- a router that stops answering: the gate searches every domain, says why
RPID=$(pgrep -f "moebus router --home $MOEBUS_HOME" | head -1)
kill -STOP "$RPID"
t0=$(date +%s%N)
"$MOEBUS" call gate '{"op":"search","query":"violin sonata","k":3}' >"$WORK/f1.json" || { kill -CONT "$RPID"; fail "search with a frozen router"; }
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
kill -CONT "$RPID"
[ "$(json_get "$WORK/f1.json" "(j['router']['model'], j['domains_searched'], j['results'][0]['domain'])")" = "('uniform', 4, 'music')" ] || fail "frozen router fallback: $(cat "$WORK/f1.json")"
[ "$(json_get "$WORK/f1.json" "'router' in j['gate']['reason'] and 'error' in j['router']")" = True ] || fail "fallback reason"
[ $ms -lt 2500 ] || fail "a frozen router cost $ms ms"
log "frozen router: every domain searched, answered in $ms ms"

# --- the model is persisted: a killed router comes back with it at once
model=$(json_get "$WORK/rs.json" "j['model']")
pkill -KILL -f "moebus router --home" || fail "no router process"
# the broker notices the dead worker by its missed heartbeats; ask until the
# restarted one answers
for _ in $(seq 1 100); do
  "$MOEBUS" router status --json >"$WORK/rs2.json" 2>/dev/null && break
  sleep 0.2
done
[ "$(json_get "$WORK/rs2.json" "j['model']")" = "$model" ] || fail "model not reloaded: $(cat "$WORK/rs2.json") vs $model"
grep -q "loaded $model" "$LOG" || fail "no 'loaded' line"

# --- labelled queries
printf 'tempo of the sonata\tmusic\nthe judge ruled\tlaw\n' >"$WORK/labels.tsv"
"$MOEBUS" router train --labels "$WORK/labels.tsv" --wait >"$WORK/train.out" || fail "router train: $(cat "$WORK/train.out")"
printf 'no tab here\n' >"$WORK/badlabels.tsv"
if "$MOEBUS" router train --labels "$WORK/badlabels.tsv" 2>/dev/null; then fail "bad labels accepted"; fi
"$MOEBUS" router status | grep -q "examples" || fail "router status table"
