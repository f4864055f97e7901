#!/usr/bin/env bash
# Retrieval quality floor: `moebus eval` on the dictionary set's smallest
# domain (satire, 640 entries, 300 queries) through the running service.
# Measured hybrid nDCG@10 0.5026 (FTS5 BM25 reference 0.491); the floor
# leaves room for noise-free but legitimate changes and fails on a real drop.
# Skips (exit 77, reported as skipped) when ../shared/data is absent.
source "$(dirname "$0")/lib.sh" "$@"
DATA="${MOEBUS_DATA:-$SRC/../shared/data}/dict/satire"
if [ ! -f "$DATA/qrels-test.tsv" ]; then
  echo "SKIP: $DATA is absent: the quality check needs the shared evaluation data"
  exit 77
fi
FLOOR=0.48
start_serve
"$MOEBUS" eval "$DATA" --domain satire --mode all --json >"$WORK/q.json" 2>"$WORK/q.err" ||
  fail "eval: $(cat "$WORK/q.err")"
cat "$WORK/q.err"
json_get "$WORK/q.json" "'  '.join('%s %.4f' % (m, j['modes'][m]['ndcg@10']) for m in j['modes'])"
hyb=$(json_get "$WORK/q.json" "j['modes']['hybrid']['ndcg@10']")
lex=$(json_get "$WORK/q.json" "j['modes']['lexical']['ndcg@10']")
"$PY" -c "import sys; sys.exit(0 if $hyb >= $FLOOR else 1)" ||
  fail "hybrid nDCG@10 $hyb is below the floor $FLOOR"
"$PY" -c "import sys; sys.exit(0 if $hyb >= $lex else 1)" ||
  fail "hybrid nDCG@10 $hyb is below lexical $lex"
[ "$(json_get "$WORK/q.json" "j['modes']['hybrid']['failed']")" = 0 ] || fail "failed queries"
