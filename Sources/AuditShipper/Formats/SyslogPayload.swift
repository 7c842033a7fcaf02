/// What goes in the MSG part of a syslog line.
public enum SyslogPayload: String, Sendable, CaseIterable {
    case json, cef, leef
}
