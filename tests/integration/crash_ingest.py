#!/usr/bin/env python3
"""Crash safety of the index worker: SIGKILL it at random points during a
large ingest (KILLS times), restart it, and check that

  * every document whose add was acknowledged is present with all its chunks,
  * a document whose add was not acknowledged is absent or complete (never half),
  * the store and the FAISS index agree on the number of vectors, and
  * vector search finds documents by their own vectors (FAISS ids map to the
    right chunks after every rebuild).

usage: crash_ingest.py MOEBUS ENDPOINT HOME DOMAIN KILLS"""
import json
import random
import signal
import struct
import subprocess
import sys
import threading
import time

import zmq

moebus, endpoint, home, domain, kills = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
DIM = 16
rng = random.Random(7)


def vec(doc, c):
    r = random.Random(f"{doc}/{c}")
    v = [r.gauss(0, 1) for _ in range(DIM)]
    n = sum(x * x for x in v) ** 0.5
    return [x / n for x in v]


def floats(values):
    return struct.pack(f"<{len(values)}f", *values)


ctx = zmq.Context()
sock = ctx.socket(zmq.DEALER)
sock.setsockopt(zmq.LINGER, 0)
sock.connect(endpoint)
next_id = 0


def call(body, frames=(), timeout=15000):
    """One request; returns the reply dict or None (no answer in time)."""
    global next_id
    next_id += 1
    body = dict(body, id=next_id)
    sock.send_multipart([b"MDPC02", b"\x01", f"index.{domain}".encode(), json.dumps(body).encode(), *frames])
    deadline = time.time() + timeout / 1000
    while time.time() < deadline:
        if not sock.poll(max(1, int((deadline - time.time()) * 1000))):
            break
        msg = sock.recv_multipart()
        reply = json.loads(msg[3])
        if reply.get("id") == next_id:
            return reply
    return None


worker = None
lock = threading.Lock()
done = threading.Event()
kill_count = 0


def start_worker():
    return subprocess.Popen([moebus, "index", "--domain", domain, "--home", home, "--endpoint", endpoint],
                            stderr=open(f"{home}/worker.log", "a"))


def killer():
    global worker, kill_count
    while kill_count < kills:
        time.sleep(rng.uniform(0.15, 0.9))
        with lock:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            kill_count += 1
            worker = start_worker()
    done.set()


worker = start_worker()
threading.Thread(target=killer, daemon=True).start()

acked = {}      # doc -> chunks, acknowledged
uncertain = {}  # doc -> chunks, sent but not acknowledged
batch = 0
while not done.is_set():
    docs, vectors = [], []
    for i in range(40):
        doc = f"b{batch}-{i}"
        n = 1 + (i % 3)
        docs.append({"id": doc, "hash": "h", "source": "crash", "chunks": [f"{doc} text {c}" for c in range(n)]})
        for c in range(n):
            vectors += vec(doc, c)
    reply = call({"op": "add", "dim": DIM, "model": "test", "docs": docs}, [floats(vectors)])
    target = acked if reply and reply.get("ok") else uncertain
    for d in docs:
        target[d["id"]] = len(d["chunks"])
    if reply and not reply.get("ok") and reply["error"]["code"] not in ("unavailable", "timeout"):
        sys.exit(f"unexpected error: {reply}")
    batch += 1

# Let the last worker come up, then check.
time.sleep(0.5)
stats = call({"op": "stats"}, timeout=60000)
assert stats and stats["ok"], stats
ids = list(acked) + list(uncertain)
present = set()
for i in range(0, len(ids), 1000):
    r = call({"op": "needs", "docs": [{"id": d, "hash": "h"} for d in ids[i:i + 1000]]}, timeout=60000)
    needed = set(r["needed"])
    present |= {d for d in ids[i:i + 1000] if d not in needed}
missing = [d for d in acked if d not in present]
expected_chunks = sum(acked.values()) + sum(n for d, n in uncertain.items() if d in present)
print(f"kills {kill_count}, batches {batch}, acknowledged docs {len(acked)}, unacknowledged {len(uncertain)} "
      f"({sum(1 for d in uncertain if d in present)} of them committed before the kill)")
print(f"store: {stats['documents']} docs, {stats['chunks']} chunks; FAISS: {stats['vectors']} vectors")
ok = True
if missing:
    print(f"FAIL: {len(missing)} acknowledged documents are missing, e.g. {missing[:5]}")
    ok = False
if stats["chunks"] != expected_chunks:
    print(f"FAIL: store has {stats['chunks']} chunks, the present documents have {expected_chunks}: a half-written document")
    ok = False
if stats["documents"] != len(present):
    print(f"FAIL: store has {stats['documents']} documents, {len(present)} are accounted for")
    ok = False
if stats["vectors"] != stats["chunks"]:
    print("FAIL: the FAISS index and the store disagree")
    ok = False
# Vector search finds sampled documents by their own vectors.
for d in rng.sample(sorted(acked), min(30, len(acked))):
    r = call({"op": "search", "dim": DIM, "k": 1}, [floats(vec(d, 0))])
    got = r["results"][0]["doc_id"] if r and r.get("ok") and r["results"] else None
    if got != d:
        print(f"FAIL: searching {d}'s vector found {got}")
        ok = False
        break
with lock:
    worker.terminate()
    worker.wait()
print("crash test:", "ok" if ok else "FAILED")
sys.exit(0 if ok else 1)
