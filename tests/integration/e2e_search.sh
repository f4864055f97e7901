#!/usr/bin/env bash
# End to end: broker + gate + two domains' workers as real processes; ingest
# real files; the search returns the expected document first, from the
# expected domain; re-ingest adds nothing; domain filters and unknown domains.
source "$(dirname "$0")/lib.sh" "$@"

"$MOEBUS" domain add cooking --embed hash >/dev/null
"$MOEBUS" domain add astronomy --embed hash >/dev/null
mkdir -p "$WORK/cooking/sub"
cat >"$WORK/cooking/bread.md" <<'T'
# Bread
Knead the dough of flour, water, yeast and salt, let it rise, then bake the loaf in a hot oven.
T
echo "Simmer tomatoes with garlic and basil for a simple pasta sauce." >"$WORK/cooking/sub/sauce.txt"
cat >"$WORK/astro.jsonl" <<'T'
{"_id": "a1", "title": "Telescope", "text": "A telescope gathers light to observe distant galaxies, nebulae and stars."}
{"_id": "a2", "title": "Comet", "text": "A comet is an icy body that releases gas when it passes close to the sun."}
{"_id": "a3", "title": "Bread oven of the stars", "text": "Stars fuse hydrogen into helium in their cores."}
T
gzip -k "$WORK/astro.jsonl"
start_serve
wait_live index.cooking; wait_live embed.astronomy; wait_live index.astronomy

"$MOEBUS" ingest cooking "$WORK/cooking" 2>"$WORK/ingest1.err" || fail "ingest cooking: $(cat "$WORK/ingest1.err")"
"$MOEBUS" ingest astronomy "$WORK/astro.jsonl.gz" 2>"$WORK/ingest2.err" || fail "ingest astronomy"
grep -q "2 docs (2 new" "$WORK/ingest1.err" || fail "expected 2 new cooking docs: $(cat "$WORK/ingest1.err")"
grep -q "3 docs (3 new" "$WORK/ingest2.err" || fail "expected 3 new astronomy docs"

"$MOEBUS" search --json "telescope to observe galaxies" >"$WORK/s1.json" || fail "search failed"
[ "$(json_get "$WORK/s1.json" "j['results'][0]['domain']")" = astronomy ] || fail "expected astronomy first: $(cat "$WORK/s1.json")"
[ "$(json_get "$WORK/s1.json" "j['results'][0]['doc_id']")" = a1 ] || fail "expected a1 first"
[ "$(json_get "$WORK/s1.json" "'astronomy' in j['gate']['domains']")" = True ] || fail "astronomy searched"
[ "$(json_get "$WORK/s1.json" "j['partial']")" = False ] || fail "not partial"
[ "$(json_get "$WORK/s1.json" "all(k in j['timings'] for k in ('embed_us','index_us','total_us'))")" = True ] || fail "timings"

"$MOEBUS" search --json "knead dough and bake a loaf" >"$WORK/s2.json"
[ "$(json_get "$WORK/s2.json" "j['results'][0]['domain']")" = cooking ] || fail "expected cooking first: $(cat "$WORK/s2.json")"
[[ "$(json_get "$WORK/s2.json" "j['results'][0]['doc_id']")" == */bread.md ]] || fail "expected bread.md first"

# The human table names the domain and document.
"$MOEBUS" search -k 3 "comet gas sun" >"$WORK/s3.txt"
sed -n 2p "$WORK/s3.txt" | grep -q "astronomy .* a2" || fail "table: $(cat "$WORK/s3.txt")"

# Re-ingesting the same content adds nothing; a changed document is replaced.
"$MOEBUS" ingest astronomy "$WORK/astro.jsonl" 2>"$WORK/ingest3.err"
grep -q "3 docs (0 new, 0 replaced, 3 unchanged)" "$WORK/ingest3.err" || fail "re-ingest: $(cat "$WORK/ingest3.err")"
sed -i 's/icy body/dirty snowball/' "$WORK/astro.jsonl"
"$MOEBUS" ingest astronomy "$WORK/astro.jsonl" 2>"$WORK/ingest4.err"
grep -q "(0 new, 1 replaced, 2 unchanged)" "$WORK/ingest4.err" || fail "replace: $(cat "$WORK/ingest4.err")"
"$MOEBUS" call index.astronomy '{"op":"stats"}' >"$WORK/st.json"
[ "$(json_get "$WORK/st.json" "(j['documents'], j['chunks'], j['vectors'])")" = "(3, 3, 3)" ] || fail "stats: $(cat "$WORK/st.json")"

# Domain filter, unknown domain.
"$MOEBUS" search --json --domain cooking "telescope" >"$WORK/s4.json"
[ "$(json_get "$WORK/s4.json" "set(r['domain'] for r in j['results'])")" = "{'cooking'}" ] || fail "filter"
if "$MOEBUS" search --json --domain nosuch "x" >"$WORK/s5.json"; then fail "unknown domain accepted"; fi
[ "$(json_get "$WORK/s5.json" "j['error']['code']")" = unknown_domain ] || fail "unknown_domain code"

# Filters and modes through the gate; delete through the index service.
"$MOEBUS" search --json --doc-prefix a --mode lexical "stars sun light" >"$WORK/f1.json"
[ "$(json_get "$WORK/f1.json" "sorted(set(r['doc_id'][0] for r in j['results']))")" = "['a']" ] || fail "doc-prefix filter"
"$MOEBUS" search --json --meta title=Comet "icy" >"$WORK/f2.json"
[ "$(json_get "$WORK/f2.json" "[r['doc_id'] for r in j['results']]")" = "['a2']" ] || fail "meta filter: $(cat "$WORK/f2.json")"
"$MOEBUS" call index.astronomy '{"op":"delete","ids":["a3"]}' >/dev/null || fail "delete"
"$MOEBUS" search --json --domain astronomy "stars fuse hydrogen" >"$WORK/f3.json"
[ "$(json_get "$WORK/f3.json" "'a3' in [r['doc_id'] for r in j['results']]")" = False ] || fail "deleted doc still found"
"$MOEBUS" ingest astronomy "$WORK/astro.jsonl" 2>/dev/null  # puts a3 back for the checks below

"$MOEBUS" domain list >"$WORK/list.txt"
grep -qE "^astronomy +hash +256 +3 +3" "$WORK/list.txt" || fail "domain list: $(cat "$WORK/list.txt")"

# Restart: the indexes come back from disk with the same answers.
stop_serve
start_serve
wait_live index.astronomy
"$MOEBUS" search --json "telescope to observe galaxies" >"$WORK/s6.json"
[ "$(json_get "$WORK/s6.json" "[(r['domain'], r['doc_id']) for r in j['results']]")" = \
  "$(json_get "$WORK/s1.json" "[(r['domain'], r['doc_id']) for r in j['results']]")" ] || fail "results changed across restart"
grep -q "rebuilding" "$LOG" && fail "a clean restart must not rebuild the FAISS index"

# A domain added while serve runs gets its workers without a restart.
"$MOEBUS" domain add late --embed hash >/dev/null
wait_live index.late 10; wait_live embed.late 10
printf '{"_id":"z1","title":"","text":"zeppelin airship filled with hydrogen"}\n' >"$WORK/late.jsonl"
"$MOEBUS" ingest -q late "$WORK/late.jsonl" || fail "ingest into the live-added domain"
"$MOEBUS" search --json "zeppelin airship" >"$WORK/s7.json"
[ "$(json_get "$WORK/s7.json" "(j['results'][0]['domain'], j['results'][0]['doc_id'])")" = "('late', 'z1')" ] || fail "live-added domain: $(cat "$WORK/s7.json")"
# Ingest into a domain the catalog does not have fails at once, clearly.
if "$MOEBUS" ingest nosuch "$WORK/late.jsonl" 2>"$WORK/nosuch.err"; then fail "ingest into unknown domain"; fi
grep -q "unknown domain 'nosuch'" "$WORK/nosuch.err" || fail "message: $(cat "$WORK/nosuch.err")"
log "e2e ok"
