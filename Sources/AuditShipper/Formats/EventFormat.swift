/// How an event becomes one line of text. Pure: an event in, bytes out.
///
/// Only `json` exists so far; the syslog work adds `rfc5424`, `cef` and `leef` here, and every
/// line-oriented sink (stdout, syslog) gets them at once.
public enum EventFormat: String, Sendable, CaseIterable {
    case json

    /// Appends the event's line, without the line terminator.
    public func append(_ event: AuditEvent, to buffer: inout [UInt8]) {
        switch self {
        case .json: buffer.append(contentsOf: event.json)
        }
    }
}
