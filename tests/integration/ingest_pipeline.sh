#!/usr/bin/env bash
# The ingest pipeline end to end through the CLI: formats (text, Markdown,
# HTML, PDF, JSONL.gz, by name and by content), per-file errors listed and
# nothing else lost, chunk offsets and titles in results, idempotence,
# changed and deleted files (--delete-missing), an interrupted job resumed
# without duplicates, and an index worker SIGKILLed mid-ingest.
source "$(dirname "$0")/lib.sh" "$@"
"$MOEBUS" domain add docs --embed hash >/dev/null
"$MOEBUS" domain add bulk --embed hash >/dev/null
D="$WORK/docs"
mkdir -p "$D/sub"
printf '# Bread\n\nSourdough needs a starter. It rises slowly overnight.\n\nBake at 230 degrees.\n' >"$D/bread.md"
echo "Otters hold hands while sleeping on rivers." >"$D/sub/otters.txt"
echo "Plain words about walruses in a file without an extension." >"$D/sub/NOTES"
cat >"$D/volcano.html" <<'HTML'
<!DOCTYPE html><html><head><title>Volcano Guide</title><style>p{color:red}</style>
<script>var scriptonlyword = 1;</script></head><body><h1>Volcanoes</h1>
<p>Lava flows from the crater.</p><div>Ash clouds rise high.</div></body></html>
HTML
"$PY" "$(dirname "$0")/make_pdf.py" "$D/paper.pdf" "Quantum zebras graze on photon meadows."
"$PY" - "$D/corpus.jsonl.gz" <<'PY'
import gzip, json, sys
with gzip.open(sys.argv[1], "wt") as f:
    f.write(json.dumps({"_id": "j1", "title": "Glaciers", "text": "Glaciers carve valleys."}) + "\n")
    f.write("{broken json\n")
    f.write(json.dumps({"_id": "j2", "title": "", "text": "Moraines are glacial debris."}) + "\n")
PY
printf 'ab\0cd' >"$D/image.dat"
printf 'caf\xe9 au lait' >"$D/latin1.txt"
start_serve
wait_live index.docs
wait_live index.bulk

# formats, errors
expected=7 # bread otters NOTES volcano paper j1 j2
if ! command -v pdftotext >/dev/null; then expected=6; fi
"$MOEBUS" ingest docs "$D" >"$WORK/i1.out" 2>"$WORK/i1.err" || fail "ingest: $(cat "$WORK/i1.err")"
cat "$WORK/i1.err"
grep -q "docs: $expected docs ($expected new" "$WORK/i1.err" || fail "expected $expected new documents"
grep -q "image.dat: binary file" "$WORK/i1.err" || fail "binary file not listed"
grep -q "latin1.txt: not valid UTF-8" "$WORK/i1.err" || fail "latin1 file not listed"
grep -q "1 bad record" "$WORK/i1.err" || fail "the broken JSONL line is not counted"
search() { "$MOEBUS" search --json --domain docs "$1" >"$WORK/s.json" || fail "search $1"; }
search "lava crater"
[ "$(json_get "$WORK/s.json" "j['results'][0]['title']")" = "Volcano Guide" ] || fail "html title: $(cat "$WORK/s.json")"
# (no `| grep -q`: grep exits at the first match, the writer gets SIGPIPE,
# and pipefail fails the line at random)
t=$(json_get "$WORK/s.json" "j['results'][0]['text']")
[[ "$t" == *"Lava flows from the crater."* ]] || fail "html text: $t"
search "scriptonlyword"
t=$(json_get "$WORK/s.json" "[r['text'] for r in j['results']]")
[[ "$t" == *scriptonlyword* ]] && fail "script text was indexed"
search "sourdough starter"
top=$(json_get "$WORK/s.json" "j['results'][0]")
[[ "$top" == *"'offsets': [0, "* ]] || fail "no offsets on the chunk: $top"
if command -v pdftotext >/dev/null; then
  search "quantum zebras"
  t=$(json_get "$WORK/s.json" "j['results'][0]['source']")
  [[ "$t" == *paper.pdf ]] || fail "pdf not searchable: $t"
else
  grep -q "poppler-utils" "$WORK/i1.err" || fail "no pdftotext: the error must say what to install"
fi
log "formats ok"

# idempotent; changed and deleted files
"$MOEBUS" ingest docs "$D" 2>"$WORK/i2.err" || fail "re-ingest"
grep -q "docs: $expected docs (0 new, 0 replaced, $expected unchanged)" "$WORK/i2.err" || fail "re-ingest not idempotent: $(cat "$WORK/i2.err")"
echo "Otters also use rocks as tools." >"$D/sub/otters.txt"
rm "$D/sub/NOTES"
"$MOEBUS" ingest docs "$D" --delete-missing 2>"$WORK/i3.err" || fail "delete-missing"
grep -q "1 replaced" "$WORK/i3.err" || fail "changed file not replaced: $(cat "$WORK/i3.err")"
grep -q "deleted 1 document" "$WORK/i3.err" || fail "deleted file not removed: $(cat "$WORK/i3.err")"
"$MOEBUS" domain list --json >"$WORK/list.json"
n=$(json_get "$WORK/list.json" "[d['documents'] for d in j if d['name']=='docs'][0]")
[ "$n" = $((expected - 1)) ] || fail "documents after delete-missing: $n"
log "idempotent, replace, delete-missing ok"

# an interrupted job resumes without duplicates
B="$WORK/bulk"
mkdir -p "$B"
"$PY" - "$B" <<'PY'
import json, sys
for f in range(40):
    with open(f"{sys.argv[1]}/part{f:02d}.jsonl", "w") as out:
        for i in range(600):
            out.write(json.dumps({"_id": f"p{f}-{i}", "title": f"entry {i}",
                                  "text": f"bulk document {i} of part {f} about item{i % 97}"}) + "\n")
PY
"$MOEBUS" ingest bulk "$B" >"$WORK/b1.out" 2>"$WORK/b1.err" &
ing=$!
sleep 1.5 # about a quarter of it
kill -INT $ing
rc=0; wait $ing || rc=$?
cat "$WORK/b1.err"
[ $rc -eq 130 ] || fail "an interrupted ingest exits 130 (got $rc)"
"$MOEBUS" ingest --jobs --json >"$WORK/jobs.json"
job=$(json_get "$WORK/jobs.json" "[x['id'] for x in j if x['domain']=='bulk'][-1]")
grep -q "moebus ingest --resume $job" "$WORK/b1.err" || fail "no resume hint"
"$MOEBUS" ingest --jobs >"$WORK/jobs.txt"
grep -qE "^ +$job bulk +interrupted" "$WORK/jobs.txt" || fail "job not interrupted: $(cat "$WORK/jobs.txt")"
"$MOEBUS" ingest --resume "$job" 2>"$WORK/b2.err" || fail "resume: $(cat "$WORK/b2.err")"
cat "$WORK/b2.err"
grep -q "committed by the earlier run skipped" "$WORK/b2.err" || fail "resume re-read every file"
"$MOEBUS" domain list --json >"$WORK/list.json"
n=$(json_get "$WORK/list.json" "[d['documents'] for d in j if d['name']=='bulk'][0]")
c=$(json_get "$WORK/list.json" "[d['chunks'] for d in j if d['name']=='bulk'][0]")
[ "$n" = 24000 ] && [ "$c" = 24000 ] || fail "after resume: $n documents, $c chunks (want 24000 each: no duplicates)"
t=$("$MOEBUS" ingest --resume "$job")
[[ "$t" == *"already done"* ]] || fail "a done job resumed again: $t"
log "interrupted job $job resumed: 24000 documents, no duplicates"

# the index worker dies mid-ingest: batches are sent again, nothing is lost
sed -i 's/"text": "bulk/"text": "changed bulk/' "$B"/part*.jsonl
"$MOEBUS" ingest bulk "$B" 2>"$WORK/k.err" &
ing=$!
sleep 1
pid=$(pgrep -f "moebus index --domain bulk --home" | head -1)
[ -n "$pid" ] && kill -KILL "$pid"
wait $ing || fail "ingest did not survive the index worker's death: $(cat "$WORK/k.err")"
cat "$WORK/k.err"
"$MOEBUS" domain list --json >"$WORK/list.json"
n=$(json_get "$WORK/list.json" "[d['documents'] for d in j if d['name']=='bulk'][0]")
c=$(json_get "$WORK/list.json" "[d['chunks'] for d in j if d['name']=='bulk'][0]")
[ "$n" = 24000 ] && [ "$c" = 24000 ] || fail "after the kill: $n documents, $c chunks"
"$MOEBUS" search --json --domain bulk "changed bulk document 599 of part 39" >"$WORK/s.json"
t=$(json_get "$WORK/s.json" "j['results'][0]['text']")
[[ "$t" == *"changed bulk"* ]] || fail "replaced text not found: $t"
log "index worker killed mid-ingest: every document replaced once"
