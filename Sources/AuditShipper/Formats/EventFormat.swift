/// How a line-oriented sink writes an event. Pure: an event in, bytes out.
public enum EventFormat: String, Sendable, CaseIterable {
    /// The event as received, compact, one line.
    case json
    /// An RFC 5424 syslog line with the JSON as MSG.
    case rfc5424
    case cef
    case leef

    /// A batch as lines, each ended by a line feed: what a line-oriented sink writes at once.
    /// `annotated`: JSON lines carry what the detection rules found (`EventAnnotation`).
    public func lines(_ batch: [AuditEvent], origin: SyslogOrigin, annotated: Bool = false) -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(batch.reduce(0) { $0 + $1.jsonCount + 1 })
        for event in batch {
            append(event, origin: origin, annotated: annotated, to: &buffer)
            buffer.append(0x0A)
        }
        return buffer
    }

    /// Appends the event's line, without the line terminator. Every format is one line:
    /// JSON is compact, CEF and LEEF escape line breaks.
    public func append(_ event: AuditEvent, origin: SyslogOrigin, annotated: Bool = false, to buffer: inout [UInt8]) {
        switch self {
        case .json:
            if annotated {
                EventAnnotation.appendJSON(event, to: &buffer)
            } else {
                event.withJSON { buffer.append(contentsOf: $0) }
            }
        case .rfc5424:
            buffer.append(
                contentsOf: SyslogFormats.rfc5424(event, details: EventDetails(event), origin: origin, payload: .json))
        case .cef: buffer.append(contentsOf: SyslogFormats.cef(event, details: EventDetails(event)).utf8)
        case .leef: buffer.append(contentsOf: SyslogFormats.leef(event, details: EventDetails(event)).utf8)
        }
    }
}
