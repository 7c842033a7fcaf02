#if canImport(Glibc)
    import Glibc
#endif

/// Syslog lines, CEF and LEEF: pure functions from an event to text, with each format's escaping.
public enum SyslogFormats {
    /// 9999-12-31T23:59:59Z: the last second a four-digit year (RFC 5424's, RFC 3164's) can say.
    static let latestHeaderTime: Int64 = 253_402_300_799

    /// The event's time as a header gives it: `effective_at` clamped to [1970, 9999], so that
    /// any Int64 an upstream sends renders (and milliseconds cannot overflow). The event's
    /// own JSON, in the message, keeps the value it came with.
    static func headerTime(_ event: AuditEvent) -> Int64 {
        min(max(event.effectiveAt, 0), latestHeaderTime)
    }

    // MARK: RFC 5424

    /// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [openai@N id=… type=… …] MSG`.
    public static func rfc5424(
        _ event: AuditEvent, details: EventDetails, origin: SyslogOrigin, payload: SyslogPayload
    ) -> [UInt8] {
        let pri = origin.facility * 8 + EventSummary.priority(event)
        var header = "<\(pri)>1 \(TimeSpec.format(headerTime(event))) \(headerField(origin.hostname, max: 255))"
        header += " \(headerField(origin.appName, max: 48)) \(headerField(origin.procID, max: 128))"
        header += " \(headerField(event.type, max: 32)) \(structuredData(event, details: details, origin: origin)) "
        var line = Array(header.utf8)
        if origin.bom { line.append(contentsOf: [0xEF, 0xBB, 0xBF]) }
        line.append(contentsOf: message(event, details: details, payload: payload))
        return line
    }

    /// The MSG: the event's JSON as received, or its CEF or LEEF line.
    public static func message(_ event: AuditEvent, details: EventDetails, payload: SyslogPayload) -> [UInt8] {
        switch payload {
        case .json: event.json
        case .cef: Array(cef(event, details: details).utf8)
        case .leef: Array(leef(event, details: details).utf8)
        }
    }

    /// A header field: printable US-ASCII only (33-126), cut to `max`, `-` when empty.
    static func headerField(_ text: String, max: Int) -> String {
        let printable = String(
            String.UnicodeScalarView(text.unicodeScalars.filter { (33...126).contains($0.value) }.prefix(max)))
        return printable.isEmpty ? "-" : printable
    }

    /// `[openai@32473 id="…" type="…" actor="…" ip="…" project="…"]`; absent values are left out.
    static func structuredData(_ event: AuditEvent, details: EventDetails, origin: SyslogOrigin) -> String {
        let actor = details.actorEmail ?? details.actorID ?? details.serviceAccountID
        let parameters: [(String, String?)] = [
            ("id", event.id), ("type", event.type), ("actor", actor), ("ip", details.actorIP),
            ("project", details.projectID),
        ]
        var sd = "[openai@\(origin.enterpriseID)"
        for case (let name, let value?) in parameters {
            sd += " \(name)=\"\(escapeParameter(value))\""
        }
        // A PARAM may repeat (RFC 5424 §6.3.3): one rule="…" per rule matched.
        for rule in event.detection?.rules ?? [] {
            sd += " rule=\"\(escapeParameter(rule))\""
        }
        return sd + "]"
    }

    /// RFC 5424 §6.3.3: `"`, `\` and `]` are escaped with a backslash inside PARAM-VALUE.
    /// Control characters become spaces so the line stays one line (MSG keeps the original).
    static func escapeParameter(_ value: String) -> String {
        var out = ""
        for scalar in value.unicodeScalars {
            if scalar == "\"" || scalar == "\\" || scalar == "]" { out.append("\\") }
            out.unicodeScalars.append(scalar.value < 0x20 || scalar.value == 0x7F ? " " : scalar)
        }
        return out
    }

    // MARK: RFC 3164

    /// `<PRI>Mmm dd hh:mm:ss HOSTNAME openai-auditd[PID]: MSG`, for old local sockets.
    public static func rfc3164(
        _ event: AuditEvent, details: EventDetails, origin: SyslogOrigin, payload: SyslogPayload
    ) -> [UInt8] {
        let pri = origin.facility * 8 + EventSummary.priority(event)
        let stamp = TimeSpec.format(headerTime(event))  // 2026-11-01T00:10:46Z
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let month = months[(Int(stamp.dropFirst(5).prefix(2)) ?? 1) - 1]
        let day = Int(stamp.dropFirst(8).prefix(2)) ?? 1
        let time = stamp.dropFirst(11).prefix(8)
        let tag = headerField(origin.appName, max: 32)
        let header =
            "<\(pri)>\(month) \(day < 10 ? " \(day)" : "\(day)") \(time) \(headerField(origin.hostname, max: 255)) \(tag)[\(origin.procID)]: "
        return Array(header.utf8) + message(event, details: details, payload: payload)
    }

    /// CEF's and LEEF's severity (0 to 10): the level of the rules the event matched
    /// (critical 10, high 8, medium 5, low 3), else 7 for a failure, 5 for a deletion, 3
    /// otherwise (an informational match too).
    static func cefSeverity(_ event: AuditEvent) -> Int {
        switch event.detection?.level {
        case .critical: 10
        case .high: 8
        case .medium: 5
        case .low: 3
        case .informational, nil: event.type.hasSuffix(".failed") ? 7 : event.type.hasSuffix(".deleted") ? 5 : 3
        }
    }

    /// The ids of the rules the event matched, comma-separated; nil when none did.
    static func rules(_ event: AuditEvent) -> String? {
        event.detection.map { $0.rules.joined(separator: ",") }
    }

    // MARK: CEF

    /// `CEF:0|OpenAI|Audit Log|<version>|<type>|<type>|<severity>|rt=… externalId=… …`.
    public static func cef(_ event: AuditEvent, details: EventDetails) -> String {
        let severity = cefSeverity(event)
        let header = [
            "CEF:0", "OpenAI", "Audit Log", AuditShipperVersion.current, cefHeader(event.type), cefHeader(event.type),
            String(severity),
        ].joined(separator: "|")
        let extensions: [(String, String?)] = [
            ("rt", String(headerTime(event) * 1000)), ("externalId", event.id), ("suser", details.actorEmail),
            ("suid", details.actorID), ("src", details.actorIP), ("cs1Label", "project"), ("cs1", details.projectID),
            // The rules before the event: the event's JSON stays last, where the file sink
            // reads it back from (`EventFormat.receipt`).
            ("cs3Label", event.detection == nil ? nil : "rules"), ("cs3", rules(event)),
            ("cs2Label", "event"), ("cs2", event.jsonString),
        ]
        return header + "|"
            + extensions.compactMap { name, value in value.map { "\(name)=\(cefExtension($0))" } }.joined(
                separator: " ")
    }

    /// CEF header fields escape `\` and `|`; line breaks become spaces.
    static func cefHeader(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "\\": out += "\\\\"
            case "|": out += "\\|"
            case "\n", "\r", "\r\n": out += " "
            default: out.append(character)
            }
        }
        return out
    }

    /// CEF extension values escape `\` and `=`, and write line breaks as `\n` and `\r`.
    static func cefExtension(_ text: String) -> String {
        escape(text, ["\\": "\\\\", "=": "\\=", "\n": "\\n", "\r": "\\r"])
    }

    /// `text` with each scalar found in `table` replaced by its entry.
    static func escape(_ text: String, _ table: [Unicode.Scalar: String]) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if let replacement = table[scalar] { out += replacement } else { out.unicodeScalars.append(scalar) }
        }
        return out
    }

    // MARK: LEEF

    /// LEEF 2.0 with `^` as the attribute delimiter:
    /// `LEEF:2.0|OpenAI|Audit Log|<version>|<type>|^|devTime=<ms>^devTimeFormat=epoch^…`.
    public static func leef(_ event: AuditEvent, details: EventDetails) -> String {
        let severity = cefSeverity(event)
        let header = ["LEEF:2.0", "OpenAI", "Audit Log", AuditShipperVersion.current, cefHeader(event.type), "^"]
            .joined(separator: "|")
        let attributes: [(String, String?)] = [
            ("devTime", String(headerTime(event) * 1000)), ("devTimeFormat", "epoch"), ("cat", event.type),
            ("sev", String(severity)), ("externalId", event.id), ("usrName", details.actorEmail),
            ("userId", details.actorID), ("src", details.actorIP), ("projectId", details.projectID),
            ("resource", details.resourceID), ("rules", rules(event)), ("event", event.jsonString),
        ]
        return header + "|"
            + attributes.compactMap { name, value in value.map { "\(name)=\(leefValue($0))" } }.joined(separator: "^")
    }

    /// LEEF values escape `\` and the delimiter `^`, and write line breaks as `\n`, `\r`, tabs as `\t`.
    static func leefValue(_ text: String) -> String {
        escape(text, ["\\": "\\\\", "^": "\\^", "\n": "\\n", "\r": "\\r", "\t": "\\t"])
    }
}
