#!/usr/bin/env python3
"""A plain fake of the audit log API for `make bench`, written with Python's standard library
and none of the project's code, so the benchmark does not only measure against the project's
own simulator: newest first, `after=<last_id>` paging, `effective_at[gte|gt|lt|lte]`,
`limit` 1..100, ~600-byte events written by json.dumps with its default separators (spaces),
the `Date` header http.server sends. `tenant_only=true` answers an empty list (these events are
all organization-scoped). GET /_stats gives the number of audit log requests served.

By default it answers as http.server does out of the box: HTTP/1.0, a connection per request.
With --keep-alive it speaks HTTP/1.1 and keeps connections open, with Nagle's algorithm off:
http.server writes a response's header and body in two sends, and with Nagle on a small body
waits for the client's delayed ACK (about 40 ms a response, on this machine's loopback).

--delay MS holds each audit log request MS milliseconds before it is answered, as a remote API
takes time per page. --max-in-flight N answers 429 (no Retry-After) to a request that arrives
while N others are being answered, as an unpublished rate limit would; /_stats counts them.

Usage: bench_server.py [--keep-alive] [--delay MS] [--max-in-flight N] PORT_FILE EVENTS DAYS [SEED]"""
import argparse
import bisect
import json
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

TYPES = ["api_key.created", "api_key.updated", "login.succeeded", "login.failed", "project.created",
         "user.added", "invite.sent", "service_account.created", "rate_limit.updated", "certificate.created"]


def make_events(count, days, seed):
    rng = random.Random(seed)
    now = int(time.time()) - 60
    span = days * 86400
    events = []
    for index in range(count):
        at = now - span + (span * index) // max(1, count - 1)
        kind = TYPES[index % len(TYPES)]
        user = f"user-{rng.getrandbits(48):012x}"
        events.append({
            "id": f"audit_log-{rng.getrandbits(96):024x}",
            "object": "organization.audit_log",
            "type": kind,
            "effective_at": at,
            "project": {"id": f"proj_{rng.getrandbits(40):010x}", "name": "Benchmark project"},
            "actor": {"type": "session", "session": {
                "user": {"id": user, "email": f"{user}@example.com"},
                "ip_address": f"203.0.113.{rng.randrange(256)}",
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)",
                "ip_address_details": {"country": "US", "city": "San Francisco", "region": "California",
                                       "region_code": "CA", "asn": "1234", "latitude": "37.77490",
                                       "longitude": "-122.41940"}}},
            kind: {"id": f"obj_{rng.getrandbits(64):016x}", "data": {"scopes": ["api.model.request"]}},
        })
    events.sort(key=lambda e: e["effective_at"], reverse=True)  # newest first, as the API lists
    return events


class Handler(BaseHTTPRequestHandler):
    events = []
    times = []  # negated effective_at, ascending: bisect finds a time range
    positions = {}
    requests = 0
    rejected = 0
    in_flight = 0
    delay = 0.0
    max_in_flight = None
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/_stats":
            return self.reply(200, {"requests": Handler.requests, "rejected": Handler.rejected})
        if not url.path.endswith("/organization/audit_logs"):
            return self.reply(404, {"error": {"message": "not found"}})
        with Handler.lock:
            Handler.requests += 1
            busy = Handler.max_in_flight is not None and Handler.in_flight >= Handler.max_in_flight
            if busy:
                Handler.rejected += 1
            else:
                Handler.in_flight += 1
        if busy:
            return self.reply(429, {"error": {"message": "Rate limit reached", "type": "requests"}})
        try:
            if Handler.delay:
                time.sleep(Handler.delay)
            status, body = self.answer(url)
        finally:
            # Done with before its answer is sent: a client that sends its next request the
            # moment it has the answer is not counted twice while this thread is still writing.
            with Handler.lock:
                Handler.in_flight -= 1
        self.reply(status, body)

    def answer(self, url):
        query = dict(parse_qsl(url.query))
        limit = int(query.get("limit", 20))
        if not 1 <= limit <= 100:
            return (400, {"error": {"message": "Invalid 'limit'", "param": "limit"}})
        if query.get("tenant_only") == "true":
            return (200, {"object": "list", "data": [], "first_id": None, "last_id": None,
                          "has_more": False})
        low, high = -(2**62), 2**62
        if "effective_at[gte]" in query: low = max(low, int(query["effective_at[gte]"]))
        if "effective_at[gt]" in query: low = max(low, int(query["effective_at[gt]"]) + 1)
        if "effective_at[lt]" in query: high = min(high, int(query["effective_at[lt]"]) - 1)
        if "effective_at[lte]" in query: high = min(high, int(query["effective_at[lte]"]))
        first = bisect.bisect_left(Handler.times, -high)
        last = bisect.bisect_right(Handler.times, -low)
        if "after" in query:
            position = Handler.positions.get(query["after"])
            if position is None:
                return (400, {"error": {"message": "Invalid 'after'", "param": "after"}})
            first = max(first, position + 1)
        page = Handler.events[first:min(last, first + limit)]
        return (200, {"object": "list", "data": page,
                      "first_id": page[0]["id"] if page else None,
                      "last_id": page[-1]["id"] if page else None,
                      "has_more": first + limit < last})


def main():
    parser = argparse.ArgumentParser(description="A plain fake of the audit log API for make bench.")
    parser.add_argument("--keep-alive", action="store_true")
    parser.add_argument("--delay", type=float, default=0, metavar="MS")
    parser.add_argument("--max-in-flight", type=int, default=None, metavar="N")
    parser.add_argument("port_file")
    parser.add_argument("count", type=int)
    parser.add_argument("days", type=int)
    parser.add_argument("seed", type=int, nargs="?", default=1)
    args = parser.parse_args()
    if args.keep_alive:
        Handler.protocol_version = "HTTP/1.1"
        Handler.disable_nagle_algorithm = True
    Handler.delay = args.delay / 1000
    Handler.max_in_flight = args.max_in_flight
    Handler.events = make_events(args.count, args.days, args.seed)
    Handler.times = [-event["effective_at"] for event in Handler.events]
    Handler.positions = {event["id"]: index for index, event in enumerate(Handler.events)}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(args.port_file, "w") as out:
        out.write(f"{server.server_address[1]}\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
