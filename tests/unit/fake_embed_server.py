#!/usr/bin/env python3
"""A small OpenAI-compatible /v1/embeddings server for the http expert's tests.

The model name picks the behaviour, so one server covers every case:
  ok        vectors of DIM (argv[2]) floats, deterministic per text
  slow      sleeps 3 s before answering (client timeout)
  flaky     429 with Retry-After: 0 on the first request per batch, then ok
  down      503 always
  garbage   200 with a body that is not JSON
  wrongdim  vectors of DIM + 1 floats
  auth      401 unless "Authorization: Bearer sekret"
  short     one embedding fewer than asked
  slowish   sleeps 0.3 s per request, then ok (a re-embed that takes a while)
POST /v1/chat/completions (the generators' tests), by model:
  ok        answers "ANSWER(n passages): <question>" citing [1] when passages came
  slow      sleeps 3 s first;  hang: sleeps 60 s
  flaky     503 on the first request, then ok
  down      503 always;  garbage: 200 with a body that is not JSON
  nochoice  200 JSON without choices;  auth: 401 unless "Bearer sekret"
Prints "ready PORT" once listening. Counts requests per model at GET /count.
"""
import hashlib, json, re, struct, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIM = int(sys.argv[2]) if len(sys.argv) > 2 else 16
counts, seen, lock = {}, set(), threading.Lock()

def vec(text, dim):
    out = []
    for i in range(dim):
        h = hashlib.sha256(f"{i}:{text}".encode()).digest()
        out.append(struct.unpack("<i", h[:4])[0] / 2**31)
    return out

class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def send(self, code, body, headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        with lock:
            self.send(200, counts)

    def chat(self, body):
        model = body["model"]
        with lock:
            counts["chat:" + model] = counts.get("chat:" + model, 0) + 1
            n = counts["chat:" + model]
        if model == "slow":
            time.sleep(3)
        if model == "hang":
            time.sleep(60)
        if model == "down" or (model == "flaky" and n == 1):
            return self.send(503, {"error": {"message": "overloaded"}})
        if model == "garbage":
            return self.send(200, b"<html>not json</html>")
        if model == "nochoice":
            return self.send(200, {"id": "x", "object": "chat.completion"})
        if model == "auth" and self.headers.get("Authorization") != "Bearer sekret":
            return self.send(401, {"error": {"message": "invalid api key"}})
        user = body["messages"][-1]["content"]
        npass = len(re.findall(r"^\[\d+\] \(", user, re.M))
        q = user.split("Question: ")[-1]
        text = f"ANSWER({npass} passages): {q}" + (" [1]" if npass else "")
        self.send(200, {"id": "c1", "object": "chat.completion", "model": model,
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": text}}],
                        "usage": {"prompt_tokens": len(user) // 4, "completion_tokens": 9}})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path.endswith("/chat/completions"):
            return self.chat(body)
        model, texts = body["model"], body["input"]
        with lock:
            counts[model] = counts.get(model, 0) + 1
            first = (model, texts[0]) not in seen
            seen.add((model, texts[0]))
        if not self.path.endswith("/v1/embeddings"):
            return self.send(404, {"error": {"message": "no such path " + self.path}})
        if model == "slow":
            time.sleep(3)
        if model == "slowish":
            time.sleep(0.3)
        if model == "flaky" and first:
            return self.send(429, {"error": {"message": "slow down"}}, [("Retry-After", "0")])
        if model == "down":
            return self.send(503, {"error": "overloaded"})
        if model == "garbage":
            return self.send(200, b"<html>not json</html>")
        if model == "auth" and self.headers.get("Authorization") != "Bearer sekret":
            return self.send(401, {"error": {"message": "invalid api key"}})
        dim = DIM + 1 if model == "wrongdim" else DIM
        n = len(texts) - 1 if model == "short" else len(texts)
        data = [{"object": "embedding", "index": i, "embedding": vec(t, dim)}
                for i, t in enumerate(texts[:n])]
        data.reverse()  # servers may answer out of order: "index" says where
        self.send(200, {"object": "list", "data": data, "model": model})

srv = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
print("ready", srv.server_address[1], flush=True)
srv.serve_forever()
