#!/usr/bin/env bash
# Domains added, ingested, disabled, enabled and removed while searches run
# (see live_domains.py): zero failed searches, and no answer holds a domain
# that was not enabled when it was asked.
source "$(dirname "$0")/lib.sh" "$@"
"$PY" -c "import zmq" || fail "python3-zmq missing"
"$MOEBUS" domain add base1 --embed hash >/dev/null
"$MOEBUS" domain add base2 --embed hash >/dev/null
mkdir -p "$WORK/b1" "$WORK/b2"
for k in 1 2 3 4 5 6; do
  echo "The fox and the star: bread by the river, note $k." >"$WORK/b1/n$k.txt"
  echo "An engine, a violin and a quux in the night, entry $k." >"$WORK/b2/n$k.txt"
done
start_serve
wait_live index.base1
wait_live embed.base2
"$MOEBUS" ingest base1 "$WORK/b1" --quiet || fail "ingest base1"
"$MOEBUS" ingest base2 "$WORK/b2" --quiet || fail "ingest base2"
"$PY" "$(dirname "$0")/live_domains.py" "$MOEBUS" "$MOEBUS_ENDPOINT" "$WORK" \
  "${LIVE_ROUNDS:-4}" 4 || fail "live add/remove under load"
# removed domains' workers are gone (the status file is at most 1 s old),
# and a purged domain's data too
for _ in $(seq 1 50); do
  "$MOEBUS" status >"$WORK/status.txt" || fail "moebus status"
  grep -qE "^(index|embed)\.live.* (running|retiring|stopping) " "$WORK/status.txt" || break
  sleep 0.2
done
grep -qE "^(index|embed)\.live.* (running|retiring|stopping) " "$WORK/status.txt" &&
  fail "removed domains still have workers: $(cat "$WORK/status.txt")"
grep -q "^index.base1 .*running" "$WORK/status.txt" || fail "status: $(cat "$WORK/status.txt")"
[ -d "$MOEBUS_HOME/domains/live0" ] || fail "live0 was removed without --purge: its data must stay"
[ -d "$MOEBUS_HOME/domains/live1" ] && fail "live1 was removed with --purge: its data must go"
true
