#!/usr/bin/env python3
"""Live add/remove under load (issue 6). Searcher threads keep several gate
searches in flight without pause while a controller adds a domain, ingests
it, waits for the first routed answer from it, disables, enables and removes
it (with --purge every other round), and disables/enables a base domain.

Checks, over every search:
  - none fails: each gets a reply, with ok and no per-domain error (partial);
  - every domain in an answer was enabled when the search was sent, or an
    op that enabled it was under way before the answer came back.
Prints the figures: searches, failures, time from `domain add` to the first
routed answer from the new domain.

usage: live_domains.py MOEBUS ENDPOINT WORKDIR ROUNDS SEARCHERS"""
import json
import random
import subprocess
import sys
import threading
import time

import zmq

moebus, endpoint, work, rounds, nsearch = sys.argv[1], sys.argv[2], sys.argv[3], \
    int(sys.argv[4]), int(sys.argv[5])
ctx = zmq.Context()
lock = threading.Lock()
# domain -> [(t_start, t_end, enabled_after)]; the base domains start enabled
events = {"base1": [(-1.0, -1.0, True)], "base2": [(-1.0, -1.0, True)]}
results = []  # (t0, t1, [domains], error or None)
stop = threading.Event()
WORDS = ["zorb", "quux", "fox", "star", "bread", "river", "engine", "violin"]


def now():
    return time.monotonic()


def run(*args):
    """One CLI op, recorded as an event when it changes a domain's state."""
    t0 = now()
    p = subprocess.run([moebus, *args], capture_output=True, text=True)
    t1 = now()
    if p.returncode != 0:
        raise SystemExit(f"FAIL: moebus {' '.join(args)}: {p.stderr.strip()}")
    if args[0] == "domain" and args[1] in ("add", "enable", "disable", "remove"):
        with lock:
            events.setdefault(args[2], []).append(
                (t0, t1, args[1] in ("add", "enable")))
    return p.stdout, t1 - t0


def search(sock, n, query):
    sock.send_multipart([b"MDPC02", b"\x01", b"gate",
                         json.dumps({"op": "search", "query": query, "k": 10,
                                     "id": n}).encode()])
    end = now() + 20
    while now() < end:
        if sock.poll(int((end - now()) * 1000) + 1):
            fr = sock.recv_multipart()
            r = json.loads(fr[3])
            if r.get("id") == n:
                return r
    return None


def searcher(seed):
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    r, n = random.Random(seed), 0
    while not stop.is_set():
        n += 1
        q = " ".join(r.sample(WORDS, 2)) + f" r{r.randrange(rounds)}"
        t0 = now()
        rep = search(sock, n, q)
        t1 = now()
        err = None
        if rep is None:
            err = "no reply in 20 s"
        elif not rep.get("ok"):
            err = json.dumps(rep.get("error"))
        elif rep.get("partial"):
            err = "partial: " + json.dumps(rep.get("errors"))
        doms = sorted({h["domain"] for h in rep.get("results", [])}) if rep else []
        with lock:
            results.append((t0, t1, doms, err))
    sock.close()


def first_answer(domain, term, t_add):
    """Seconds from t_add until a routed search returns `domain`."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    n = 0
    try:
        while now() - t_add < 60:
            n += 1
            rep = search(sock, 10**6 + n, term)
            if rep and any(h["domain"] == domain for h in rep.get("results", [])):
                return now() - t_add
            time.sleep(0.02)
    finally:
        sock.close()
    raise SystemExit(f"FAIL: {domain} never answered '{term}'")


def write_docs(i):
    d = f"{work}/docs{i}"
    subprocess.run(["mkdir", "-p", d], check=True)
    for k in range(20):
        with open(f"{d}/doc{k}.txt", "w") as f:
            f.write(f"zorb quux r{i} note {k}: the zorb{i} engine hums by the river "
                    f"while a violin plays; fox and star and bread r{i}.\n")
    return d


threads = [threading.Thread(target=searcher, args=(s,)) for s in range(nsearch)]
for t in threads:
    t.start()
adds = []
try:
    for i in range(rounds):
        name = f"live{i}"
        docs = write_docs(i)
        t_add = now()
        run("domain", "add", name, "--embed", "hash")
        _, t_ing = run("ingest", name, docs, "--quiet")
        took = first_answer(name, f"zorb{i} engine", t_add)
        adds.append((took, t_ing))
        print(f"round {i}: {name} added, ingested in {t_ing:.2f} s, first routed "
              f"answer {took:.2f} s after `domain add`", flush=True)
        time.sleep(0.5)
        run("domain", "disable", name)
        time.sleep(0.7)
        run("domain", "enable", name)
        time.sleep(0.5)
        run("domain", "disable", "base2")
        time.sleep(0.5)
        run("domain", "enable", "base2")
        time.sleep(0.3)
        if i % 2:
            run("domain", "remove", name, "--purge")
        else:
            run("domain", "remove", name)
        time.sleep(0.7)
finally:
    stop.set()
    for t in threads:
        t.join()


def allowed(dom, t0, t1):
    evs = events.get(dom)
    if not evs:
        return False  # a domain this test never enabled
    done = [e for e in evs if e[1] <= t0]
    if done and done[-1][2]:
        return True  # enabled when the search was sent
    # not enabled at t0 (never added yet, or disabled/removed): only an
    # enabling op begun before the answer came back may explain it
    return any(e[2] and e[0] < t1 and e[1] > t0 for e in evs)


failed = [r for r in results if r[3]]
leaks = [r for r in results if not r[3] and any(not allowed(d, r[0], r[1]) for d in r[2])]
seen = {}
for r in results:
    for d in r[2]:
        seen[d] = seen.get(d, 0) + 1
lat = sorted(r[1] - r[0] for r in results)
print(f"searches: {len(results)} ({nsearch} in flight), failed: {len(failed)}, "
      f"answers with a domain not enabled when asked: {len(leaks)}")
print(f"search latency under churn: median {lat[len(lat) // 2] * 1000:.1f} ms, "
      f"p99 {lat[int(len(lat) * 0.99)] * 1000:.1f} ms")
print("domains seen in answers: " + ", ".join(f"{k} {v}" for k, v in sorted(seen.items())))
tk = sorted(a[0] for a in adds)
print(f"domain add -> first routed answer: median {tk[len(tk) // 2]:.2f} s "
      f"(min {tk[0]:.2f}, max {tk[-1]:.2f}; ingest of 20 docs included)")
for r in failed[:5]:
    print("failed:", r)
for r in leaks[:5]:
    print("leak:", r, {d: events.get(d) for d in r[2]})
if len(results) < 50:
    raise SystemExit(f"FAIL: only {len(results)} searches ran")
if not any(d.startswith("live") for d in seen):
    raise SystemExit("FAIL: no answer ever came from an added domain")
if failed or leaks:
    raise SystemExit("FAIL")
