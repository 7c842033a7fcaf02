#!/usr/bin/env python3
"""The benchmark's yardstick: a plain Python poller (requests + json) doing the daemon's job
for one catch-up: walk the window with after=<last_id> (and again with tenant_only=true),
drop repeats, sort oldest first, print each event as one compact JSON line."""
import json
import os
import sys

import requests


def walk(session, base, since, tenant_only):
    params = {"effective_at[gte]": since, "limit": 100}
    if tenant_only:
        params["tenant_only"] = "true"
    while True:
        response = session.get(f"{base}/organization/audit_logs", params=params, timeout=30)
        response.raise_for_status()
        page = response.json()
        yield from page["data"]
        if not page["has_more"]:
            return
        params["after"] = page["last_id"]


def main():
    base, since = sys.argv[1], int(sys.argv[2])
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {os.environ['OPENAI_ADMIN_KEY']}"
    seen, events = set(), []
    for tenant_only in (False, True):
        for event in walk(session, base, since, tenant_only):
            if event["id"] not in seen:
                seen.add(event["id"])
                events.append(event)
    events.reverse()
    events.sort(key=lambda e: e["effective_at"])
    out = sys.stdout
    for event in events:
        out.write(json.dumps(event, separators=(",", ":"), ensure_ascii=False))
        out.write("\n")
    print(f"baseline: {len(events)} events", file=sys.stderr)


if __name__ == "__main__":
    main()
