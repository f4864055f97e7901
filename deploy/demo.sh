#!/usr/bin/env bash
# deploy/demo.sh — the README's main command (`make demo`): starts moebus on a
# fresh home, creates three domains from reference text Debian ships (FOLDOC,
# the Jargon File, GCIDE), ingests them, runs searches whose best answers come
# from different domains, and leaves the service running for you.
set -euo pipefail
MOEBUS=${1:-build/services/moebus}
MOEBUS=$(cd "$(dirname "$MOEBUS")" && pwd)/$(basename "$MOEBUS")
export MOEBUS_HOME=${MOEBUS_HOME:-$PWD/demo-home}
export MOEBUS_ENDPOINT=${MOEBUS_ENDPOINT:-tcp://127.0.0.1:5555}
DICTD=/usr/share/dictd

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

for f in foldoc jargon gcide; do
  [ -f "$DICTD/$f.index" ] || { echo "missing $DICTD/$f.index: run deploy/bootstrap.sh" >&2; exit 1; }
done
if [ -f "$MOEBUS_HOME/serve.pid" ] && kill -0 "$(cat "$MOEBUS_HOME/serve.pid")" 2>/dev/null; then
  say "stopping the previous demo service"
  "$MOEBUS" stop --home "$MOEBUS_HOME"
fi
rm -rf "$MOEBUS_HOME"
mkdir -p "$MOEBUS_HOME"

say "starting moebus serve (home $MOEBUS_HOME, bus $MOEBUS_ENDPOINT)"
nohup "$MOEBUS" serve >"$MOEBUS_HOME/serve.log" 2>&1 &
for _ in $(seq 1 50); do
  "$MOEBUS" call --timeout 500 mmi.service '{"service":"gate"}' 2>/dev/null | grep -q '"live": true' && break
  sleep 0.2
done

say "three domains, each with its own expert and index"
"$MOEBUS" domain add computing
"$MOEBUS" domain add jargon
"$MOEBUS" domain add english

say "ingesting: one document per dictionary entry"
"$MOEBUS" ingest computing "$DICTD/foldoc.index"
"$MOEBUS" ingest jargon "$DICTD/jargon.index"
"$MOEBUS" ingest english "$DICTD/gcide.index"

say "each domain's index worker fits its builtin expert (LSA) on the domain's text"
for d in computing jargon english; do "$MOEBUS" domain wait "$d"; done
"$MOEBUS" domain list

# Best answers from different domains: computing (FOLDOC), jargon, english (GCIDE).
for q in "compiler optimization of loops" \
         "magic smoke released from fried hardware" \
         "the color of the sky" \
         "programming language for artificial intelligence lisp"; do
  say "moebus search \"$q\""
  "$MOEBUS" search -k 5 "$q"
done

say "the router trains itself on the three domains (pseudo-queries from their text)"
for _ in $(seq 1 120); do
  "$MOEBUS" router status 2>/dev/null | grep -q "(idle)" &&
    "$MOEBUS" route "x" >/dev/null 2>&1 && break
  sleep 0.5
done
"$MOEBUS" router status
say "moebus route \"wideband atm\""
"$MOEBUS" route "wideband atm"
say "moebus ask \"what is a kludge\"   (no generator configured: an extractive answer)"
"$MOEBUS" ask "what is a kludge"

say "a data owner opts out: jargon leaves routing at once, its workers keep running"
"$MOEBUS" search -k 4 --p 1 "kludge"
"$MOEBUS" domain disable jargon
"$MOEBUS" search -k 4 --p 1 "kludge"
"$MOEBUS" domain enable jargon

say "moebus status: every process and service"
"$MOEBUS" status

cat <<MSG

The service is still running (log: $MOEBUS_HOME/serve.log). Try:
  export MOEBUS_HOME=$MOEBUS_HOME MOEBUS_ENDPOINT=$MOEBUS_ENDPOINT
  $MOEBUS search "your question"              # table; --json for the full reply
  $MOEBUS search --domain jargon "kludge"
  $MOEBUS ask "your question"                 # with citations; add a generator:
  $MOEBUS generator add local --url http://localhost:11434/v1 --model llama3.2
  $MOEBUS stats                               # retrieval skipped, domains per query
  python3 proto/examples/client.py $MOEBUS_ENDPOINT "your question"
  $MOEBUS status                              # processes, services, latency
  $MOEBUS ingest --jobs                       # ingest jobs (resume one with --resume N)
Stop it with:
  $MOEBUS stop --home $MOEBUS_HOME
MSG
