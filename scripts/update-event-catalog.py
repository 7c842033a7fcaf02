#!/usr/bin/env python3
"""Regenerates Sources/AuditSimulator/EventCatalogData.swift from an event-types.json
(the list of event types and payload shapes taken from OpenAI's OpenAPI spec)."""
import json
import sys

source = sys.argv[1] if len(sys.argv) > 1 else "../shared/openai-audit/event-types.json"
types = json.load(open(source))["event_types"]
body = json.dumps({"event_types": types}, separators=(",", ":")).replace('},{"type"', '},\n{"type"')
with open("Sources/AuditSimulator/EventCatalogData.swift", "w") as out:
    out.write("// The 145 event types of the public spec with the shape of each payload, copied from\n")
    out.write("// openai/openai-openapi (commit f85dbe2) so the simulator needs no file at run time.\n")
    out.write("// Regenerate with scripts/update-event-catalog.py when the upstream list grows.\n")
    out.write('let eventCatalogJSON = ##"""\n' + body + '\n"""##\n')
print(f"{len(types)} event types written")
