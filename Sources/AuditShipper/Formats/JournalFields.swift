/// The journal entry of an event: DESIGN.md's fields, pure.
public enum JournalFields {
    /// "OpenAI audit event"; explained by `packaging/openai-auditd.catalog`.
    public static let messageID = "3f6c1d0e8b7a4e2f9c5d4b3a2e1f0d9c"

    /// Field names and values in order; a field whose source is absent is left out, never sent
    /// empty. `OPENAI_EVENT_JSON` is the whole event. Values are bytes: newlines survive.
    public static func fields(for event: AuditEvent, identifier: String) -> [(name: String, value: [UInt8])] {
        let details = EventDetails(event)
        var fields: [(name: String, value: [UInt8])] = [
            ("MESSAGE", Array(EventSummary.message(type: event.type, details: details).utf8)),
            ("PRIORITY", Array(String(EventSummary.priority(event)).utf8)),
            ("SYSLOG_IDENTIFIER", Array(identifier.utf8)),
            ("MESSAGE_ID", Array(messageID.utf8)),
            ("OPENAI_AUDIT_ID", event.hashedID.withUTF8 { Array($0) }),
            ("OPENAI_EVENT_TYPE", Array(event.type.utf8)),
            ("OPENAI_EFFECTIVE_AT", Array(String(event.effectiveAt).utf8)),
        ]
        let optional: [(String, String?)] = [
            ("OPENAI_ACTOR_TYPE", details.actorType), ("OPENAI_ACTOR_ID", details.actorID),
            ("OPENAI_ACTOR_EMAIL", details.actorEmail), ("OPENAI_ACTOR_IP", details.actorIP),
            ("OPENAI_API_KEY_ID", details.apiKeyID), ("OPENAI_PROJECT_ID", details.projectID),
            ("OPENAI_PROJECT_NAME", details.projectName), ("OPENAI_RESOURCE_ID", details.resourceID),
        ]
        for (name, value) in optional {
            if let value, !value.isEmpty { fields.append((name, Array(value.utf8))) }
        }
        // One OPENAI_RULE per rule matched: journalctl OPENAI_RULE=<id> finds each.
        if let detection = event.detection {
            for rule in detection.rules { fields.append(("OPENAI_RULE", Array(rule.utf8))) }
            fields.append(("OPENAI_RULE_LEVEL", Array(detection.level.description.utf8)))
        }
        fields.append(("OPENAI_EVENT_JSON", event.json))
        return fields
    }

    /// journald's rule: `[A-Z0-9_]`, not starting with `_` or a digit, at most 64 characters.
    /// Anything else is dropped by journald without an error.
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= 64, first != UInt8(ascii: "_"),
            !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first)
        else { return false }
        return name.utf8.allSatisfy {
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                || $0 == UInt8(ascii: "_")
        }
    }
}
