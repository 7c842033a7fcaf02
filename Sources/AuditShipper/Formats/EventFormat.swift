/// How a line-oriented sink writes an event. Pure: an event in, bytes out.
public enum EventFormat: String, Sendable, CaseIterable {
    /// The event as received, compact, one line.
    case json
    /// An RFC 5424 syslog line with the JSON as MSG.
    case rfc5424
    case cef
    case leef

    /// Appends the event's line, without the line terminator. Every format is one line:
    /// JSON is compact, CEF and LEEF escape line breaks.
    public func append(_ event: AuditEvent, origin: SyslogOrigin, to buffer: inout [UInt8]) {
        switch self {
        case .json: buffer.append(contentsOf: event.json)
        case .rfc5424:
            buffer.append(
                contentsOf: SyslogFormats.rfc5424(event, details: EventDetails(event), origin: origin, payload: .json))
        case .cef: buffer.append(contentsOf: SyslogFormats.cef(event, details: EventDetails(event)).utf8)
        case .leef: buffer.append(contentsOf: SyslogFormats.leef(event, details: EventDetails(event)).utf8)
        }
    }
}
