#!/usr/bin/env python3
"""A Splunk HTTP Event Collector for the tests, written from Splunk's HEC documentation
(REST endpoints /services/collector/event, /services/collector/ack and
/services/collector/health; "About HTTP Event Collector Indexer Acknowledgment"; the HEC
status codes table), including the ways a real one goes wrong. Prints its port, then one
line per request it answered ("event 200 0 ack=3 events=40", "ack 200", ...).

Events it indexes are appended, each HEC object as received, to INDEX (a JSON line each):
with acknowledgement, once their ack is due (an indexer writes them, then the ack turns true).

Usage: fake-splunk-hec.py INDEX [--token T] [--disabled-token T] [--no-ack]
         [--ack-delay SECONDS] [--lose N] [--busy N] [--max-content-length BYTES]
         [--hang-after N] [--restart-after N] [--stall-acks N,M,...] [--port P] [--log FILE]

--no-ack            indexer acknowledgement is off for the token
--ack-delay S       an accepted request's ack becomes true S seconds after it came
--lose N            the first N event requests with events are accepted (200 with an ackId)
                    but never indexed: their acks never become true (an indexer lost them)
--busy N            the first N event requests are answered 503, code 9 (server is busy)
--max-content-length B   bodies over B bytes (after decompression) are answered 413
--hang-after N      after N event requests, event requests are read and never answered
--restart-after N   after N accepted event requests, Splunk restarts: what it had not indexed
                    yet is lost, and every channel's acks and ack ids start again from 0
--port P            listen on P (default: a free port)
--stall-acks N,...  ack queries number N, ... (counted from 1 over the fake's life) are read
                    and never answered, and change nothing ("ack stalled"): a client
                    waiting there is mid-batch, for a test to kill at its leisure
--log FILE          each line printed is also appended to FILE
--not-hec           every request is answered 200 with an HTML page (a load balancer's)

As Splunk does: a token with acknowledgement on needs a channel (header
X-Splunk-Request-Channel or ?channel=, a GUID) on every event request (code 10 without,
11 for one that is not a GUID); ack ids count up per channel; an ack query answers each id
true once indexed and then forgets it (asked again, it is false); ack queries on a token
without acknowledgement are code 14; a wrong token is 403 code 4, none is 401 code 2, a
disabled one 403 code 1; an empty body is 400 code 5; a body that is not a sequence of
JSON objects is 400 code 6; an object without "event" is 400 code 12.
"""
import json
import re
import sys
import threading
import time
import uuid
from urllib.parse import parse_qs, urlparse

from fake_http import JSONHandler, option, say, serve

INDEX = sys.argv[1]
TOKEN = option("--token", "test-hec-token")
DISABLED = option("--disabled-token")
ACK = "--no-ack" not in sys.argv
ACK_DELAY = option("--ack-delay", 0.0, float)
LOSE = option("--lose", 0, int)
BUSY = option("--busy", 0, int)
MAX_CONTENT = option("--max-content-length", 800 << 20, int)
HANG_AFTER = option("--hang-after", None, int)
RESTART_AFTER = option("--restart-after", None, int)
STALL_ACKS = {int(n) for n in option("--stall-acks", "").split(",") if n}

lock = threading.Lock()
# channel -> {ack id: (time it becomes true, or None for never)}
channels = {}
next_ack = {}
counters = {"busy": 0, "lost": 0, "events": 0, "accepted": 0, "acks": 0}
# Accepted, acknowledged requests not indexed yet: [due time, HEC objects].
unindexed = []


def index(objects):
    with open(INDEX, "a") as out:
        for value in objects:
            out.write(json.dumps(value, separators=(",", ":")) + "\n")


def flush():
    """Indexes what is due (under `lock`)."""
    now = time.time()
    for entry in [e for e in unindexed if e[0] <= now]:
        index(entry[1])
        unindexed.remove(entry)


class Handler(JSONHandler):
    content_type = "application/json; charset=UTF-8"

    def authorized(self):
        header = self.headers.get("Authorization")
        if header is None:
            self.reply(401, {"text": "Token is required", "code": 2})
            return False
        match = re.fullmatch(r"Splunk (\S+)", header)
        if match is None:
            self.reply(401, {"text": "Invalid authorization", "code": 3})
            return False
        if DISABLED is not None and match.group(1) == DISABLED:
            self.reply(403, {"text": "Token disabled", "code": 1})
            return False
        if match.group(1) != TOKEN:
            self.reply(403, {"text": "Invalid token", "code": 4})
            return False
        return True

    def channel(self, query):
        channel = self.headers.get("X-Splunk-Request-Channel") or (query.get("channel") or [None])[0]
        if channel is None:
            return None, (400, {"text": "Data channel is missing", "code": 10})
        try:
            uuid.UUID(channel)
        except ValueError:
            return None, (400, {"text": "Invalid data channel", "code": 11})
        return channel, None

    def do_GET(self):
        url = urlparse(self.path)
        if url.path.rstrip("/") in ("/services/collector/health", "/services/collector/health/1.0"):
            self.reply(200, {"text": "HEC is healthy", "code": 17})
        else:
            self.reply(404, {"text": "The requested URL was not found on this server.", "code": 404})

    def do_POST(self):
        if "--not-hec" in sys.argv:
            self.body()
            data = b"<html><body>Service maintenance</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return say("html 200")
        url = urlparse(self.path)
        query = parse_qs(url.query)
        data = self.body()
        path = url.path.rstrip("/")
        if path in ("/services/collector/event", "/services/collector", "/services/collector/event/1.0"):
            self.event(query, data)
        elif path == "/services/collector/ack":
            self.ack(query, data)
        else:
            self.reply(404, {"text": "The requested URL was not found on this server.", "code": 404})

    def event(self, query, data):
        with lock:
            counters["events"] += 1
            number = counters["events"]
        if HANG_AFTER is not None and number > HANG_AFTER:
            say("event hang")
            time.sleep(3600)
            return
        if not self.authorized():
            return say("event refused token")
        channel = None
        if ACK:
            channel, error = self.channel(query)
            if error:
                self.reply(*error)
                return say("event %d %d" % (error[0], error[1]["code"]))
        if len(data) > MAX_CONTENT:
            self.reply(413, {"text": "Content-Length of %d too large (maximum is %d)" % (len(data), MAX_CONTENT),
                             "code": 413})
            return say("event 413")
        if not data.strip():
            self.reply(400, {"text": "No data", "code": 5})
            return say("event 400 5")
        objects = []
        decoder = json.JSONDecoder()
        text = data.decode("utf-8")
        position = 0
        while True:
            while position < len(text) and text[position] in " \t\r\n":
                position += 1
            if position == len(text):
                break
            try:
                value, position = decoder.raw_decode(text, position)
            except ValueError:
                self.reply(400, {"text": "Invalid data format", "code": 6, "invalid-event-number": len(objects)})
                return say("event 400 6")
            if not isinstance(value, dict) or "event" not in value:
                self.reply(400, {"text": "Event field is required", "code": 12, "invalid-event-number": len(objects)})
                return say("event 400 12")
            if value["event"] in ("", None):
                self.reply(400, {"text": "Event field cannot be blank", "code": 13,
                                 "invalid-event-number": len(objects)})
                return say("event 400 13")
            objects.append(value)
        with lock:
            if counters["busy"] < BUSY:
                counters["busy"] += 1
                self.reply(503, {"text": "Server is busy", "code": 9})
                return say("event 503 9")
            flush()
            if RESTART_AFTER is not None and counters["accepted"] == RESTART_AFTER:
                channels.clear()
                next_ack.clear()
                unindexed.clear()
                say("restart")
            counters["accepted"] += 1
            lost = counters["lost"] < LOSE
            if lost:
                counters["lost"] += 1
            elif ACK and ACK_DELAY > 0:
                unindexed.append([time.time() + ACK_DELAY, objects])
            else:
                index(objects)
            if not ACK:
                self.reply(200, {"text": "Success", "code": 0})
                return say("event 200 0 events=%d" % len(objects))
            ack = next_ack.get(channel, 0)
            next_ack[channel] = ack + 1
            channels.setdefault(channel, {})[ack] = None if lost else time.time() + ACK_DELAY
        self.reply(200, {"text": "Success", "code": 0, "ackId": ack})
        say("event 200 0 ack=%d events=%d%s" % (ack, len(objects), " lost" if lost else ""))

    def ack(self, query, data):
        with lock:
            counters["acks"] += 1
            number = counters["acks"]
        if number in STALL_ACKS:
            say("ack stalled")
            time.sleep(3600)
            return
        if not self.authorized():
            return say("ack refused token")
        if not ACK:
            self.reply(400, {"text": "ACK is disabled", "code": 14})
            return say("ack 400 14")
        channel, error = self.channel(query)
        if error:
            self.reply(*error)
            return say("ack %d %d" % (error[0], error[1]["code"]))
        try:
            ids = json.loads(data)["acks"]
            assert all(isinstance(i, int) for i in ids)
        except Exception:
            self.reply(400, {"text": "Invalid data format", "code": 6})
            return say("ack 400 6")
        now = time.time()
        answer = {}
        with lock:
            flush()
            table = channels.get(channel, {})
            for ack in ids:
                due = table.get(ack)
                done = due is not None and due <= now
                answer[str(ack)] = done
                if done:
                    # Splunk answers true once, then forgets the id.
                    del table[ack]
        self.reply(200, {"acks": answer})
        say("ack 200 %s" % ",".join("%s=%s" % (k, "t" if v else "f") for k, v in sorted(answer.items())))


serve(Handler)
