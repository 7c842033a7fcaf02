/// What the detection rules found, as JSON beside the event's own members:
/// `"openai_auditd":{"rules":["openai-ip-allowlist-removed"],"level":"critical"}`. JSON lines
/// that asked for it (`annotate: true`) and Elasticsearch's documents carry it; every member
/// the API sent stays as it was.
public enum EventAnnotation {
    /// The event's JSON, with the member added last when a rule matched it.
    public static func appendJSON(_ event: AuditEvent, to buffer: inout [UInt8]) {
        event.withJSON { json in
            // The page reader made sure an event is an object: its last byte is the brace.
            guard let detection = event.detection, let close = json.lastIndex(of: 0x7D) else {
                buffer.append(contentsOf: json)
                return
            }
            let members = json[..<close]
            buffer.append(contentsOf: members)
            if members.contains(where: { $0 != 0x7B && $0 != 0x20 }) { buffer.append(0x2C) }
            appendMember(detection, to: &buffer)
            buffer.append(0x7D)
        }
    }

    /// `"openai_auditd":{"rules":[…],"level":"…"}`.
    public static func appendMember(_ detection: Detection, to buffer: inout [UInt8]) {
        buffer.append(contentsOf: #""openai_auditd":{"rules":"#.utf8)
        appendRules(detection, to: &buffer)
        buffer.append(contentsOf: #","level":"#.utf8)
        JSONString.append(detection.level.description, to: &buffer)
        buffer.append(0x7D)
    }

    /// The rules' ids as a JSON array (also HEC's multivalue `openai_rules` field).
    static func appendRules(_ detection: Detection, to buffer: inout [UInt8]) {
        buffer.append(0x5B)
        for (index, rule) in detection.rules.enumerated() {
            if index > 0 { buffer.append(0x2C) }
            JSONString.append(rule, to: &buffer)
        }
        buffer.append(0x5D)
    }

    /// At least the bytes a sink adds to say `event`'s detection (none for most events), for
    /// the HTTP sinks' request sizes.
    static func size(of event: AuditEvent) -> Int {
        event.detection.map { $0.rules.reduce(64) { $0 + $1.utf8.count + 3 } } ?? 0
    }
}
