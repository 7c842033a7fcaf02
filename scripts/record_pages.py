#!/usr/bin/env python3
"""Records pages of the audit log API for the page reader's microbenchmark (make bench):
walks BASE_URL's /organization/audit_logs with limit=100 and after=<last_id>, and writes each
page's body exactly as served to DIR/spaced/NNN.json, and the same JSON re-encoded without any
insignificant whitespace to DIR/compact/NNN.json, and the path and query of each request, one per
line, to DIR/paths.txt (what http-exchange-bench requests again).

Usage: record_pages.py BASE_URL DIR PAGES"""
import json
import os
import sys
import urllib.parse
import urllib.request


def main():
    base, directory, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for kind in ("spaced", "compact"):
        os.makedirs(os.path.join(directory, kind), exist_ok=True)
    with open(os.path.join(directory, "paths.txt"), "w") as paths:
        walk(base, directory, count, paths)


def walk(base, directory, count, paths):
    after = None
    for index in range(count):
        url = f"{base}/organization/audit_logs?limit=100" + (f"&after={after}" if after else "")
        parts = urllib.parse.urlsplit(url)
        paths.write(f"{parts.path}?{parts.query}\n")
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {os.environ['OPENAI_ADMIN_KEY']}"})
        with urllib.request.urlopen(request) as response:
            body = response.read()
        page = json.loads(body)
        with open(os.path.join(directory, "spaced", f"{index:03}.json"), "wb") as out:
            out.write(body)
        with open(os.path.join(directory, "compact", f"{index:03}.json"), "w") as out:
            json.dump(page, out, separators=(",", ":"), ensure_ascii=False)
        if not page["has_more"]:
            break
        after = page["last_id"]


if __name__ == "__main__":
    main()
