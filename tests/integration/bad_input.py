#!/usr/bin/env python3
"""Sends malformed and invalid requests to a running moebus and checks that
each gets an error reply with the expected stable code."""
import json
import math
import struct
import sys

import zmq

endpoint = sys.argv[1]
ctx = zmq.Context()
sock = ctx.socket(zmq.DEALER)
sock.setsockopt(zmq.LINGER, 0)
sock.connect(endpoint)
failures = 0


def recv(timeout_ms=6000):
    if not sock.poll(timeout_ms):
        return None
    frames = sock.recv_multipart()
    assert frames[0] == b"MDPC02" and frames[1] == b"\x03", frames[:2]
    return json.loads(frames[3])


def expect(name, frames, code):
    global failures
    sock.send_multipart(frames)
    reply = recv()
    got = None if reply is None else (reply.get("error") or {}).get("code", "ok")
    status = "ok  " if got == code else "FAIL"
    if got != code:
        failures += 1
    print(f"{status} {name}: expected {code}, got {got}: {reply and reply.get('error')}")


def req(service, body, *vectors):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return [b"MDPC02", b"\x01", service.encode(), raw, *vectors]


def floats(values):
    return struct.pack(f"<{len(values)}f", *values)


dim = 256
good = floats([1.0 / math.sqrt(dim)] * dim)
expect("not MDP", [b"hello", b"world"], "bad_request")
expect("MDP without service", [b"MDPC02", b"\x01"], "bad_request")
expect("wrong command byte", [b"MDPC02", b"\x07", b"gate", b"{}"], "bad_request")
expect("body not JSON", req("gate", b"{not json"), "bad_request")
expect("body not UTF-8", req("gate", b'{"op":"search","query":"\xff\xfe"}'), "bad_request")
expect("body is an array", req("gate", b"[1,2,3]"), "bad_request")
expect("empty body frame", req("gate", b""), "bad_request")
expect("search without query", req("gate", {"op": "search"}), "bad_request")
expect("empty query", req("gate", {"op": "search", "query": ""}), "bad_request")
expect("k = 0", req("gate", {"op": "search", "query": "x", "k": 0}), "bad_request")
expect("k as string", req("gate", {"op": "search", "query": "x", "k": "5"}), "bad_request")
expect("huge query", req("gate", {"op": "search", "query": "x" * 20000}), "bad_request")
expect("unknown domain", req("gate", {"op": "search", "query": "x", "domains": ["nope"]}), "unknown_domain")
expect("unknown op", req("gate", {"op": "dance"}), "bad_request")
expect("unknown service", req("no.such.service", {}), "unknown_service")
expect("embed texts not array", req("embed.alpha", {"op": "embed", "texts": "x"}), "bad_request")
expect("embed text not string", req("embed.alpha", {"op": "embed", "texts": [1]}), "bad_request")
expect("vector frame not x4", req("index.alpha", {"op": "search", "k": 3}, b"\x00" * 7), "bad_request")
expect("vector wrong dim", req("index.alpha", {"op": "search", "k": 3, "dim": 255}, floats([0.1] * 255)), "bad_request")
expect("vector frame vs dim", req("index.alpha", {"op": "search", "k": 3, "dim": 256}, floats([0.1] * 100)), "bad_request")
expect("NaN query vector", req("index.alpha", {"op": "search", "k": 3, "dim": dim}, floats([float("nan")] * dim)), "bad_request")
expect("search k too big", req("index.alpha", {"op": "search", "k": 10001, "dim": dim}, good), "bad_request")
doc = {"id": "evil", "hash": "h", "chunks": ["c"]}
expect("add NaN vector", req("index.alpha", {"op": "add", "dim": dim, "docs": [doc]}, floats([float("inf")] * dim)), "bad_request")
expect("add count mismatch", req("index.alpha", {"op": "add", "dim": dim, "docs": [doc, dict(doc, id="evil2")]}, good), "bad_request")
expect("add empty chunk", req("index.alpha", {"op": "add", "dim": dim, "docs": [dict(doc, chunks=[""])]}, good), "bad_request")
expect("add no vectors to a domain with an expert", req("index.alpha", {"op": "add", "dim": dim, "docs": [doc]}), "version")
expect("add vectors of another expert", req("index.alpha", {"op": "add", "dim": dim, "model": "other", "docs": [doc]}, good), "version")
expect("search vector of another expert", req("index.alpha", {"op": "search", "dim": dim, "expert": "other", "query": "x"}, good), "version")
expect("oversized message", req("gate", {"op": "search", "query": "x"}, b"\x00" * (65 << 20)), "too_large")
expect("bad mode", req("gate", {"op": "search", "query": "x", "mode": "psychic"}), "bad_request")
expect("filter not object", req("gate", {"op": "search", "query": "x", "filter": "a"}), "bad_request")
expect("filter unknown field", req("gate", {"op": "search", "query": "x", "filter": {"colour": "red"}}), "bad_request")
expect("filter meta not scalar", req("gate", {"op": "search", "query": "x", "filter": {"meta": {"a": [1]}}}), "bad_request")
expect("lexical without query", req("index.alpha", {"op": "search", "mode": "lexical", "k": 3}), "bad_request")
expect("bad fusion", req("index.alpha", {"op": "search", "mode": "hybrid", "query": "x", "k": 3, "dim": dim, "fusion": "max"}, good), "bad_request")
expect("alpha out of range", req("index.alpha", {"op": "search", "mode": "hybrid", "query": "x", "k": 3, "dim": dim, "fusion": "weighted", "alpha": 2}, good), "bad_request")
expect("delete unknown id", req("index.alpha", {"op": "delete", "ids": ["x1", "no-such-doc"]}), "not_found")
expect("delete ids not array", req("index.alpha", {"op": "delete", "ids": "x1"}), "bad_request")
# After all that, a good request still works.
expect("good search", req("gate", {"op": "search", "query": "granite"}), "ok")
sys.exit(1 if failures else 0)
