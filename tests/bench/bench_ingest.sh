#!/usr/bin/env bash
# bench_ingest.sh — end-to-end ingest through the CLI, per corpus of
# ../shared/data (dict/*, beir/*), each a new domain with the builtin expert
# on one running service:
#   - ingest: documents/s and chunks/s, and the busy time of reading+parsing
#     +chunking, embedding and indexing (they overlap: batches in flight);
#   - "with fit": until `domain wait` says the expert is fitted and every
#     chunk embedded (the builtin expert fits on the domain's own text);
#   - raw components in the same run: the reader alone (ingest --dry-run) and
#     raw SQLite (Python's sqlite3: the same documents into an FTS5 table);
#   - peak RSS of every process (moebus status);
#   - time from `domain add` to the first routed answer from the domain.
# usage: bench_ingest.sh MOEBUS [--quick] [--data DIR]   (exit 77: no data)
set -euo pipefail
MOEBUS=$(readlink -f "$1"); shift
here=$(cd "$(dirname "$0")/../.." && pwd)
data="$here/../shared/data"
quick=0
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --data) data=$2; shift ;;
  esac
  shift
done
corpora=()
for c in "$data"/dict/*/corpus.jsonl.gz "$data"/beir/*/corpus.jsonl.gz; do
  [ -f "$c" ] && corpora+=("$c")
done
if [ ${#corpora[@]} -eq 0 ]; then
  echo "bench_ingest: no corpora under $data (../shared/data): skipped"
  exit 77
fi
[ $quick -eq 1 ] && corpora=("${corpora[0]}")
work=$(mktemp -d /tmp/mb-bench-ingest-XXXXXX)
export MOEBUS_HOME="$work/home" MOEBUS_ENDPOINT="tcp://127.0.0.1:${BENCH_PORT:-27590}"
"$MOEBUS" serve >"$work/serve.log" 2>&1 &
serve=$!
trap 'kill $serve 2>/dev/null; wait $serve 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  "$MOEBUS" call --timeout 500 mmi.service '{"service":"admin"}' 2>/dev/null | grep -q '"live": true' && break
  sleep 0.1
done
now() { date +%s.%N; }
calc() { awk "BEGIN { print $* }"; }
printf '%-10s %7s %7s | %6s %8s %8s | %6s %8s | %5s %5s %5s | %9s %9s | %7s\n' \
  corpus docs chunks "ing s" "docs/s" "chunk/s" "fit s" "docs/s" "read" "embed" "index" \
  "reader/s" "sqlite/s" "answer"
tot_docs=0; tot_s=0
for c in "${corpora[@]}"; do
  name=$(basename "$(dirname "$c")")
  # raw components first
  rd=$("$MOEBUS" ingest "x$name" "$c" --dry-run 2>&1 | sed -n 's/.*s: \([0-9]*\) docs\/s.*/\1/p' | head -1)
  sq=$(/usr/bin/python3 - "$c" <<'PY'
import gzip, json, sqlite3, sys, time, tempfile, os
docs = [json.loads(l) for l in gzip.open(sys.argv[1], "rt") if l.strip()]
d = tempfile.mkdtemp()
db = sqlite3.connect(os.path.join(d, "raw.db"))
db.execute("PRAGMA journal_mode=WAL")
db.execute("CREATE TABLE docs(id INTEGER PRIMARY KEY, doc_id TEXT UNIQUE, text TEXT)")
db.execute("CREATE VIRTUAL TABLE fts USING fts5(text, content='docs', content_rowid='id')")
t = time.perf_counter()
with db:
    db.executemany("INSERT INTO docs(doc_id, text) VALUES(?, ?)",
                   ((x["_id"], x.get("title", "") + "\n" + x["text"]) for x in docs))
    db.execute("INSERT INTO fts(fts) VALUES('rebuild')")
print(int(len(docs) / (time.perf_counter() - t)))
PY
)
  t0=$(now)
  "$MOEBUS" domain add "$name" >/dev/null
  "$MOEBUS" ingest "$name" "$c" 2>"$work/$name.err" >/dev/null || { cat "$work/$name.err"; exit 1; }
  t1=$(now)
  # first routed answer: a query from the domain's own text, until a result
  # comes from it (lexically at first; the router retrains in the background)
  q=$(/usr/bin/python3 -c "import gzip,json,sys; l=json.loads(gzip.open(sys.argv[1],'rt').readline()); print(' '.join((l.get('title','')+' '+l['text']).split()[:8]))" "$c")
  for _ in $(seq 1 600); do
    "$MOEBUS" search --json "$q" 2>/dev/null | grep -q "\"domain\": \"$name\"" && break
    sleep 0.05
  done
  t3=$(now)
  "$MOEBUS" domain wait "$name" >/dev/null || { echo "bench_ingest: $name expert not ready"; exit 1; }
  t2=$(now)
  docs=$(sed -n "s/^$name: \([0-9]*\) docs.*/\1/p" "$work/$name.err")
  chunks=$(sed -n "s/^$name: .*), \([0-9]*\) chunks in.*/\1/p" "$work/$name.err")
  read -r rs es is < <(sed -n 's/.*chunking \([0-9.]*\) s, embedding \([0-9.]*\) s, indexing \([0-9.]*\) s.*/\1 \2 \3/p' "$work/$name.err")
  ing=$(calc "$t1 - $t0"); fit=$(calc "$t2 - $t0"); ans=$(calc "$t3 - $t0")
  busy=$(calc "$rs + $es + $is")
  printf '%-10s %7d %7d | %6.2f %8.0f %8.0f | %6.2f %8.0f | %4.0f%% %4.0f%% %4.0f%% | %9d %9d | %6.2fs\n' \
    "$name" "$docs" "$chunks" "$ing" "$(calc "$docs / $ing")" "$(calc "$chunks / $ing")" \
    "$fit" "$(calc "$docs / $fit")" "$(calc "100 * $rs / $busy")" \
    "$(calc "100 * $es / $busy")" "$(calc "100 * $is / $busy")" "$rd" "$sq" "$ans"
  tot_docs=$((tot_docs + docs)); tot_s=$(calc "$tot_s + $fit")
done
printf 'all: %d documents in %.1f s with fit: %.0f docs/s (target >= 1500)\n' "$tot_docs" "$tot_s" "$(calc "$tot_docs / $tot_s")"
echo "ratios: ingest docs/s against the reader alone and raw SQLite+FTS5 are in the table (reader/s, sqlite/s columns)"
echo "expert jobs (index worker log): fit and re-embed per domain; router retrains"
sed -n 's/.*\[index \([a-z0-9_-]*\) [0-9]*\] info: fitted .* on \([0-9]*\) chunks in \([0-9]*\) ms/  \1: fit \3 ms (\2 chunks)/p; s/.*\[index \([a-z0-9_-]*\) [0-9]*\] info: re-embedded \([0-9]*\) chunks .* in \([0-9]*\) ms/  \1: re-embed \3 ms/p' "$work/serve.log"
echo "  router: $(grep -c 'info: trained router' "$work/serve.log") retrains, $(sed -n 's/.* in \([0-9]*\) ms (held-out.*/\1/p' "$work/serve.log" | awk '{s += $1} END {printf "%.1f s", s / 1000}') in all"
"$MOEBUS" status --json >"$work/status.json"
/usr/bin/python3 - "$work/status.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
rows = sorted(((c["name"], c.get("peak_rss_kb", 0) / 1024) for c in j["serve"]["children"]),
              key=lambda r: -r[1])
print("peak RSS (MB): " + ", ".join(f"{n} {m:.0f}" for n, m in rows))
PY
