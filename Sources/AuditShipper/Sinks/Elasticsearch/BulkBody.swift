/// The lines of a `_bulk` request: per event a `create` action keyed by the event's id (so a
/// repeat is a 409 the index answers, never a second document) and the document, which is
/// the audit event whole with `@timestamp` (RFC 3339, from `effective_at`) put first, and
/// `openai_auditd` (the rules it matched and their level) last when a rule matched it.
struct BulkBody: Sendable {
    /// `{"create":{"_index":…,"_id":` with the index escaped once.
    let actionPrefix: [UInt8]

    init(index: String) {
        var prefix: [UInt8] = Array(#"{"create":{"_index":"#.utf8)
        JSONString.append(index, to: &prefix)
        prefix.append(contentsOf: #","_id":"#.utf8)
        actionPrefix = prefix
    }

    /// One event's two lines, appended to `body`.
    func append(_ event: AuditEvent, to body: inout [UInt8]) {
        body.append(contentsOf: actionPrefix)
        event.hashedID.withUTF8 { JSONString.append(utf8: $0, to: &body) }
        body.append(contentsOf: "}}\n".utf8)
        event.withJSON { json in
            body.append(contentsOf: #"{"@timestamp":""#.utf8)
            body.append(contentsOf: TimeSpec.format(event.effectiveAt).utf8)
            body.append(0x22)
            // The event is an object (the page reader made sure): its members follow ours,
            // and what the detection rules found follows them (`EventAnnotation`).
            let rest = json.dropFirst().drop { $0 == 0x20 }
            if rest.first != 0x7D { body.append(0x2C) }
            guard let detection = event.detection, let close = rest.lastIndex(of: 0x7D) else {
                body.append(contentsOf: rest)
                return
            }
            body.append(contentsOf: rest[..<close])
            if rest.first != 0x7D { body.append(0x2C) }
            EventAnnotation.appendMember(detection, to: &body)
            body.append(0x7D)
        }
        body.append(0x0A)
    }

    /// The bytes `append` adds for `event`.
    func size(of event: AuditEvent) -> Int {
        actionPrefix.count + event.hashedID.count + event.jsonCount + 64
            + EventAnnotation.size(of: event)
    }
}
