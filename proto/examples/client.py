#!/usr/bin/env python3
"""Minimal moebus client: python3 client.py ENDPOINT "QUERY" [DOMAIN...]

Speaks MDP/0.2 over a DEALER socket, as proto/PROTOCOL.md describes."""
import json
import sys

import zmq

endpoint, query, domains = sys.argv[1], sys.argv[2], sys.argv[3:]
sock = zmq.Context().socket(zmq.DEALER)
sock.setsockopt(zmq.LINGER, 0)
sock.connect(endpoint)

request = {"op": "search", "query": query, "k": 5, "id": 1}
if domains:
    request["domains"] = domains
sock.send_multipart([b"MDPC02", b"\x01", b"gate", json.dumps(request).encode()])

if not sock.poll(10000):  # always use a deadline: the broker may be down
    sys.exit("no reply within 10 s")
header, command, service, body, *vectors = sock.recv_multipart()
assert header == b"MDPC02" and command == b"\x03"  # FINAL
reply = json.loads(body)
if not reply.get("ok"):
    print(f"error {reply['error']['code']}: {reply['error']['message']}")
    sys.exit(1)
for hit in reply["results"]:
    text = " ".join(hit["text"].split())[:60]
    print(f"{hit['domain']:10} {hit['doc_id']:12} {hit['raw_score']:.3f}  {text}")
