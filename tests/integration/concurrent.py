#!/usr/bin/env python3
"""Searches during ingest: a writer replaces 50 documents per round (4 chunks
each, every chunk tagged with the round) in one add, while a searcher runs
lexical and dense searches in parallel. Checks: no search fails; no result
holds chunks of two versions of one document; a lexical search that returns
every chunk sees exactly one round (a batch is applied all at once).

usage: concurrent.py ENDPOINT DOMAIN ROUNDS"""
import json
import random
import re
import struct
import sys
import threading
import time

import zmq

endpoint, domain, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
DIM, DOCS, CHUNKS = 16, 50, 4
ctx = zmq.Context()


class Client:
    def __init__(self):
        self.s = ctx.socket(zmq.DEALER)
        self.s.setsockopt(zmq.LINGER, 0)
        self.s.connect(endpoint)
        self.n = 0

    def call(self, body, frames=(), timeout=20000):
        self.n += 1
        self.s.send_multipart([b"MDPC02", b"\x01", f"index.{domain}".encode(),
                               json.dumps(dict(body, id=self.n)).encode(), *frames])
        end = time.time() + timeout / 1000
        while time.time() < end:
            if self.s.poll(int((end - time.time()) * 1000) + 1):
                r = json.loads(self.s.recv_multipart()[3])
                if r.get("id") == self.n:
                    return r
        return None


def floats(v):
    return struct.pack(f"<{len(v)}f", *v)


def unit(r):
    v = [r.gauss(0, 1) for _ in range(DIM)]
    n = sum(x * x for x in v) ** 0.5
    return [x / n for x in v]


stop = threading.Event()
errors = []
writes = []


def writer():
    c, r = Client(), random.Random(1)
    for v in range(rounds):
        docs, vecs = [], []
        for d in range(DOCS):
            docs.append({"id": f"doc{d}", "hash": f"v{v}", "chunks": [f"doc{d} round{v} part{p} common" for p in range(CHUNKS)]})
            for _ in range(CHUNKS):
                vecs += unit(r)
        t0 = time.time()
        rep = c.call({"op": "add", "dim": DIM, "model": "t", "docs": docs}, [floats(vecs)])
        writes.append(time.time() - t0)
        if not rep or not rep.get("ok"):
            errors.append(f"add failed: {rep}")
    stop.set()


def versions(results):
    per_doc = {}
    for h in results:
        m = re.search(r"round(\d+)", h["text"])
        per_doc.setdefault(h["doc_id"], set()).add(int(m.group(1)))
    return per_doc


threading.Thread(target=writer, daemon=True).start()
c, r = Client(), random.Random(2)
searches, lat, full_rounds = 0, [], set()
while not stop.is_set():
    for body, frames in (({"op": "search", "mode": "lexical", "query": "common", "k": DOCS * CHUNKS}, []),
                         ({"op": "search", "mode": "dense", "dim": DIM, "k": 50}, [floats(unit(r))]),
                         ({"op": "search", "mode": "hybrid", "query": "common part1", "dim": DIM, "k": 50}, [floats(unit(r))])):
        t0 = time.time()
        rep = c.call(body, frames)
        lat.append(time.time() - t0)
        searches += 1
        if not rep or not rep.get("ok"):
            errors.append(f"search failed during ingest: {rep}")
            continue
        per_doc = versions(rep["results"])
        mixed = {d: v for d, v in per_doc.items() if len(v) > 1}
        if mixed:
            errors.append(f"{body['mode']} search mixed versions of a document: {mixed}")
        if body["mode"] == "lexical" and rep["results"]:
            seen = set().union(*per_doc.values())
            if len(rep["results"]) != DOCS * CHUNKS or len(seen) != 1:
                errors.append(f"lexical search saw a partial batch: {len(rep['results'])} chunks, rounds {seen}")
            full_rounds |= seen
lat.sort()
writes.sort()
print(f"{searches} searches during {rounds} rounds of {DOCS} replaced documents; "
      f"search median {lat[len(lat)//2]*1000:.1f} ms, p99 {lat[int(len(lat)*0.99)]*1000:.1f} ms; "
      f"add median {writes[len(writes)//2]*1000:.1f} ms; rounds seen by lexical searches: {len(full_rounds)}")
for e in errors[:5]:
    print("FAIL:", e)
sys.exit(1 if errors else 0)
