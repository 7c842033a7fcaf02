#!/usr/bin/env python3
"""An Elasticsearch for the tests, written from Elastic's documentation of the `_bulk` API
("Bulk API": the NDJSON body, `create` failing with 409 version_conflict_engine_exception
when the id exists, per-item statuses in the order of the actions, `errors`, the
`filter_path` response filter, `pipeline`), the root endpoint's version, API-key and basic
authentication, and 429/413 for whole requests. Prints its port, then one line per request
("bulk 200 items=40 201=38 409=1 429=1", "root 200", ...).

Documents it holds are appended to INDEX, one JSON line each: {"_index", "_id", "_source"}.

Usage: fake-elasticsearch.py INDEX [--api-key K] [--user NAME:PASSWORD] [--reject-id ID]...
         [--item-429 N] [--item-503 N] [--busy N] [--max-content-length BYTES]
         [--port P] [--distribution opensearch] [--slow MS] [--stall N,M,...] [--log FILE]

--reject-id ID      the document with this _id is refused 400 mapper_parsing_exception
--item-429 N        the first N create items are refused 429 es_rejected_execution_exception
--item-503 N        the first N create items are refused 503 unavailable_shards_exception
--busy N            the first N bulk requests are refused whole, 429
--max-content-length B   bodies over B bytes (after decompression) are answered 413
--slow MS           each bulk request is answered MS milliseconds after it came (a loaded cluster)
--stall N,...       bulk requests number N, ... (counted from 1 over the fake's life) are
                    carried out and never answered ("bulk stalled"): a client waiting there
                    is mid-batch, its documents held but not known to it
--log FILE          each line printed is also appended to FILE
"""
import base64
import json
import sys
import threading
import time
from urllib.parse import parse_qs, urlparse

from fake_http import JSONHandler, option, say, serve

INDEX = sys.argv[1]
API_KEY = option("--api-key")
USER = option("--user")
REJECT = {sys.argv[i + 1] for i, a in enumerate(sys.argv) if a == "--reject-id"}
ITEM_429 = option("--item-429", 0, int)
ITEM_503 = option("--item-503", 0, int)
BUSY = option("--busy", 0, int)
MAX_CONTENT = option("--max-content-length", 100 << 20, int)
DISTRIBUTION = option("--distribution")
SLOW = option("--slow", 0, int)
STALL = {int(n) for n in option("--stall", "").split(",") if n}

lock = threading.Lock()
held = {}  # (index, id) -> source
counters = {"429": 0, "503": 0, "busy": 0, "bulks": 0}


def filtered(body, paths):
    """The filter_path response filter, for the forms `a`, `a.*.b` and `a.*.b.c`."""
    if not paths:
        return body
    out = {}
    for path in paths.split(","):
        parts = path.split(".")
        if parts[0] not in body:
            continue
        if len(parts) == 1:
            out[parts[0]] = body[parts[0]]
            continue
        if parts[1] == "*" and isinstance(body[parts[0]], list):
            items = out.setdefault(parts[0], [{} for _ in body[parts[0]]])
            for kept, item in zip(items, body[parts[0]]):
                for action, result in item.items():
                    value = result
                    for part in parts[2:]:
                        value = value.get(part) if isinstance(value, dict) else None
                    if value is not None:
                        target = kept.setdefault(action, {})
                        for part in parts[2:-1]:
                            target = target.setdefault(part, {})
                        target[parts[-1]] = value
    return out


class Handler(JSONHandler):
    # Elasticsearch 8 names itself on every answer; its clients check it.
    extra_headers = {"X-elastic-product": "Elasticsearch"}

    def authorized(self):
        if API_KEY is None and USER is None:
            return True
        header = self.headers.get("Authorization") or ""
        if API_KEY is not None and header == "ApiKey " + API_KEY:
            return True
        if USER is not None and header == "Basic " + base64.b64encode(USER.encode()).decode():
            return True
        self.reply(401, {"error": {"root_cause": [{"type": "security_exception",
                                                   "reason": "unable to authenticate user"}],
                                   "type": "security_exception", "reason": "unable to authenticate user"},
                         "status": 401})
        return False

    def do_GET(self):
        if not self.authorized():
            return say("root 401")
        if urlparse(self.path).path == "/":
            version = {"number": "8.15.0", "build_flavor": "default"}
            if DISTRIBUTION:
                version = {"distribution": DISTRIBUTION, "number": "2.17.0"}
            self.reply(200, {"name": "fake", "cluster_name": "test", "version": version,
                             "tagline": "You Know, for Search"})
            return say("root 200")
        self.reply(404, {"error": "no handler", "status": 404})

    def do_POST(self):
        url = urlparse(self.path)
        query = parse_qs(url.query)
        data = self.body()
        time.sleep(SLOW / 1000)
        if not self.authorized():
            return say("bulk 401")
        parts = [p for p in url.path.split("/") if p]
        if parts[-1:] != ["_bulk"]:
            self.reply(404, {"error": "no handler", "status": 404})
            return
        default_index = parts[0] if len(parts) == 2 else None
        if not (self.headers.get("Content-Type") or "").startswith(("application/x-ndjson", "application/json")):
            self.reply(406, {"error": "Content-Type header is not supported", "status": 406})
            return say("bulk 406")
        if len(data) > MAX_CONTENT:
            self.reply(413, {"error": {"type": "content_too_long_exception",
                                       "reason": "entity content is too long [%d] for the configured buffer limit [%d]"
                                                 % (len(data), MAX_CONTENT)}, "status": 413})
            return say("bulk 413")
        with lock:
            if counters["busy"] < BUSY:
                counters["busy"] += 1
                self.reply(429, {"error": {"type": "es_rejected_execution_exception",
                                           "reason": "rejected execution of coordinating operation"},
                                 "status": 429})
                return say("bulk 429")
        if not data.endswith(b"\n"):
            self.reply(400, {"error": {"type": "illegal_argument_exception",
                                       "reason": "The bulk request must be terminated by a newline [\\n]"},
                             "status": 400})
            return say("bulk 400")
        lines = data.split(b"\n")[:-1]
        items = []
        statuses = {}
        pipeline = (query.get("pipeline") or [None])[0]
        index_lines = []
        position = 0
        while position < len(lines):
            action = json.loads(lines[position])
            (kind, meta), = action.items()
            if kind not in ("create", "index"):
                self.reply(400, {"error": {"type": "illegal_argument_exception",
                                           "reason": "unexpected action [%s]" % kind}, "status": 400})
                return say("bulk 400 action")
            source = json.loads(lines[position + 1])
            position += 2
            index = meta.get("_index") or default_index
            doc_id = meta.get("_id")
            with lock:
                if counters["429"] < ITEM_429:
                    counters["429"] += 1
                    result = {"_index": index, "_id": doc_id, "status": 429,
                              "error": {"type": "es_rejected_execution_exception",
                                        "reason": "rejected execution of primary operation"}}
                elif counters["503"] < ITEM_503:
                    counters["503"] += 1
                    result = {"_index": index, "_id": doc_id, "status": 503,
                              "error": {"type": "unavailable_shards_exception",
                                        "reason": "primary shard is not active"}}
                elif doc_id in REJECT:
                    result = {"_index": index, "_id": doc_id, "status": 400,
                              "error": {"type": "document_parsing_exception",
                                        "reason": "[1:2] failed to parse field [payload] of type [long]"}}
                elif kind == "create" and (index, doc_id) in held:
                    result = {"_index": index, "_id": doc_id, "status": 409,
                              "error": {"type": "version_conflict_engine_exception",
                                        "reason": "[%s]: version conflict, document already exists (current version [1])"
                                                  % doc_id}}
                else:
                    held[(index, doc_id)] = source
                    index_lines.append(json.dumps({"_index": index, "_id": doc_id, "_source": source,
                                                   "pipeline": pipeline}, separators=(",", ":")))
                    result = {"_index": index, "_id": doc_id, "_version": 1, "result": "created",
                              "status": 201}
            statuses[result["status"]] = statuses.get(result["status"], 0) + 1
            items.append({kind: result})
        if index_lines:
            with lock, open(INDEX, "a") as out:
                out.write("\n".join(index_lines) + "\n")
        with lock:
            counters["bulks"] += 1
            stalled = counters["bulks"] in STALL
        if stalled:
            say("bulk stalled")
            time.sleep(3600)
            return
        body = {"took": 3, "errors": any("error" in next(iter(i.values())) for i in items), "items": items}
        self.reply(200, filtered(body, (query.get("filter_path") or [None])[0]))
        say("bulk 200 items=%d %s" % (len(items), " ".join("%d=%d" % kv for kv in sorted(statuses.items()))))


serve(Handler)
