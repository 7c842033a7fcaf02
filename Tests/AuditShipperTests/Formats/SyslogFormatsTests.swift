import AuditShipper
import Testing

/// Golden lines for RFC 5424, RFC 3164, CEF and LEEF, escaping included.
@Suite struct SyslogFormatsTests {
    static let json =
        #"{"id":"audit_log-1","type":"api_key.created","effective_at":1722471046,"project":{"id":"proj_abc","name":"P"},"actor":{"type":"session","session":{"user":{"id":"user-1","email":"al\"i]ce@example.com"},"ip_address":"203.0.113.7"}},"api_key.created":{"id":"key_xyz","data":{"scopes":["a|b=c\\d\ne^f"]}}}"#
    static let origin = SyslogOrigin(facility: 16, hostname: "host", appName: "openai-auditd", procID: "42")

    /// One event read as a sink's line is (a page would set aside the times at 0 or before
    /// that the header clamping is tested with).
    func event(_ json: String = json) throws -> AuditEvent {
        try Array(json.utf8).withUnsafeBufferPointer { try PageScanner.event($0) }
    }

    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    @Test func rfc5424() throws {
        let event = try event()
        let line = text(SyslogFormats.rfc5424(event, details: EventDetails(event), origin: Self.origin, payload: .json))
        #expect(
            line
                == #"<133>1 2024-08-01T00:10:46Z host openai-auditd 42 api_key.created [openai@32473 id="audit_log-1" type="api_key.created" actor="al\"i\]ce@example.com" ip="203.0.113.7" project="proj_abc"] "#
                + Self.json)
    }

    @Test func rfc5424WithBOMPriorityAndALongType() throws {
        let event = try event(
            #"{"id":"x","type":"tenant.workload_identity.provider.deleted","effective_at":0,"actor":{"type":"session","session":{"user":{"id":"u","email":"bob\n@example.com"}}}}"#
        )
        var origin = Self.origin
        origin.bom = true
        origin.facility = 4
        origin.hostname = "host name with spaces"
        origin.enterpriseID = 99
        let bytes = SyslogFormats.rfc5424(event, details: EventDetails(event), origin: origin, payload: .json)
        let line = text(bytes)
        // PRI = 4*8 + 4 (deleted); MSGID cut to 32 characters; HOSTNAME without spaces; BOM before MSG.
        #expect(
            line.hasPrefix(
                #"<36>1 1970-01-01T00:00:00Z hostnamewithspaces openai-auditd 42 tenant.workload_identity.provide [openai@99 id="x" type="tenant.workload_identity.provider.deleted" actor="bob @example.com"] "#
            ))
        let bom = bytes.firstIndex(of: 0xEF)!
        #expect(Array(bytes[bom..<(bom + 3)]) == [0xEF, 0xBB, 0xBF])
        #expect(Array(bytes[(bom + 3)...]) == event.json)
    }

    @Test func rfc3164() throws {
        let event = try event()
        let line = text(SyslogFormats.rfc3164(event, details: EventDetails(event), origin: Self.origin, payload: .json))
        #expect(line == "<133>Aug  1 00:10:46 host openai-auditd[42]: " + Self.json)
    }

    @Test func cef() throws {
        let event = try event()
        #expect(
            SyslogFormats.cef(event, details: EventDetails(event))
                == #"CEF:0|OpenAI|Audit Log|0.1.0|api_key.created|api_key.created|3|rt=1722471046000 externalId=audit_log-1 suser=al"i]ce@example.com suid=user-1 src=203.0.113.7 cs1Label=project cs1=proj_abc cs2Label=event cs2={"id":"audit_log-1","type":"api_key.created","effective_at":1722471046,"project":{"id":"proj_abc","name":"P"},"actor":{"type":"session","session":{"user":{"id":"user-1","email":"al\\"i]ce@example.com"},"ip_address":"203.0.113.7"}},"api_key.created":{"id":"key_xyz","data":{"scopes":["a|b\=c\\\\d\\ne^f"]}}}"#
        )
    }

    @Test func cefEscapesHeaderPipesAndExtensionLineBreaks() throws {
        let event = try event(
            #"{"id":"x","type":"odd|type\\name.failed","effective_at":1,"actor":{"type":"session","session":{"user":{"id":"u","email":"bob\n@ex=ample.com"}}}}"#
        )
        let line = SyslogFormats.cef(event, details: EventDetails(event))
        #expect(
            line.hasPrefix(#"CEF:0|OpenAI|Audit Log|0.1.0|odd\|type\\name.failed|odd\|type\\name.failed|7|rt=1000 "#))
        #expect(line.contains(#" suser=bob\n@ex\=ample.com "#))
        #expect(!line.contains("\n"))
    }

    @Test func leef() throws {
        let event = try event()
        #expect(
            SyslogFormats.leef(event, details: EventDetails(event))
                == #"LEEF:2.0|OpenAI|Audit Log|0.1.0|api_key.created|^|devTime=1722471046000^devTimeFormat=epoch^cat=api_key.created^sev=3^externalId=audit_log-1^usrName=al"i]ce@example.com^userId=user-1^src=203.0.113.7^projectId=proj_abc^resource=key_xyz^event={"id":"audit_log-1","type":"api_key.created","effective_at":1722471046,"project":{"id":"proj_abc","name":"P"},"actor":{"type":"session","session":{"user":{"id":"user-1","email":"al\\"i]ce@example.com"},"ip_address":"203.0.113.7"}},"api_key.created":{"id":"key_xyz","data":{"scopes":["a|b=c\\\\d\\ne\^f"]}}}"#
        )
    }

    @Test func leefEscapesTheDelimiterAndLineBreaks() throws {
        let event = try event(
            #"{"id":"x^y","type":"t.deleted","effective_at":1,"actor":{"type":"session","session":{"user":{"id":"u","email":"a^b\tc\nd"}}}}"#
        )
        let line = SyslogFormats.leef(event, details: EventDetails(event))
        #expect(line.contains(#"^sev=5^externalId=x\^y^usrName=a\^b\tc\nd^"#))
        #expect(!line.contains("\n") && !line.contains("\t"))
    }

    /// Any Int64 an upstream sends renders in every format without trapping: headers clamp it
    /// to [1970, 9999] (milliseconds cannot overflow), the event's own JSON keeps it as sent.
    @Test(arguments: [Int64.max, Int64.min, 10_000_000_000_000_000, 253_402_300_800, -1, 1_800_000_000_000])
    func anyEffectiveAtRendersInEveryFormat(_ stamp: Int64) throws {
        let event = try event(#"{"id":"odd","type":"login.failed","effective_at":\#(stamp)}"#)
        let details = EventDetails(event)
        let late = stamp > 253_402_300_799
        let rfc5424 = text(SyslogFormats.rfc5424(event, details: details, origin: Self.origin, payload: .json))
        #expect(
            rfc5424.hasPrefix(
                late ? "<132>1 9999-12-31T23:59:59Z " : stamp < 0 ? "<132>1 1970-01-01T00:00:00Z " : "<132>1 "))
        #expect(rfc5424.hasSuffix(#""effective_at":\#(stamp)}"#))
        let rfc3164 = text(SyslogFormats.rfc3164(event, details: details, origin: Self.origin, payload: .json))
        #expect(
            rfc3164.hasPrefix(late ? "<132>Dec 31 23:59:59 host " : stamp < 0 ? "<132>Jan  1 00:00:00 host " : "<132>"))
        let milliseconds = late ? "253402300799000" : stamp < 0 ? "0" : String(stamp * 1000)
        #expect(SyslogFormats.cef(event, details: details).contains("rt=\(milliseconds) "))
        #expect(SyslogFormats.leef(event, details: details).contains("devTime=\(milliseconds)^"))
        #expect(!TimeSpec.format(stamp).isEmpty)
    }

    @Test func everyStdoutFormatIsOneLinePerEvent() async throws {
        let events = [try event(), try event(#"{"id":"b","type":"login.succeeded","effective_at":2}"#)]
        for format in EventFormat.allCases {
            let recorder = Recorder()
            try await StdoutSink(format: format, output: recorder, origin: Self.origin).deliver(events)
            let lines = text(recorder.bytes.withLock { $0 }).split(separator: "\n", omittingEmptySubsequences: false)
            #expect(lines.count == 3 && lines[2].isEmpty, "\(format)")
        }
    }
}

final class Recorder: ByteOutput {
    let bytes = Locked<[UInt8]>([])
    func write(_ data: [UInt8]) throws { bytes.withLock { $0 += data } }
}

/// What a detection changes in each format: the severity, and the rules named.
@Suite struct DetectionFormatsTests {
    func marked(_ level: SigmaLevel, _ rules: [String] = ["rule-a", "rule\"b]"]) throws -> AuditEvent {
        try SyslogFormatsTests().event().marked(Detection(rules: rules, level: level))
    }

    @Test(arguments: [
        (SigmaLevel.critical, 2, 10), (.high, 3, 8), (.medium, 4, 5), (.low, 5, 3), (.informational, 5, 3),
    ])
    func severityFollowsTheLevel(level: SigmaLevel, syslog: Int, cef: Int) throws {
        let event = try marked(level)
        #expect(EventSummary.priority(event) == syslog)
        let line = String(
            decoding: SyslogFormats.rfc5424(
                event, details: EventDetails(event), origin: SyslogFormatsTests.origin, payload: .json), as: UTF8.self)
        #expect(line.hasPrefix("<\(16 * 8 + syslog)>1 "))
        #expect(line.contains(#" project="proj_abc" rule="rule-a" rule="rule\"b\]"] "#), "\(line)")
        let rfc3164 = String(
            decoding: SyslogFormats.rfc3164(
                event, details: EventDetails(event), origin: SyslogFormatsTests.origin, payload: .json), as: UTF8.self)
        #expect(rfc3164.hasPrefix("<\(16 * 8 + syslog)>Aug"))
        let cefLine = SyslogFormats.cef(event, details: EventDetails(event))
        #expect(
            cefLine.hasPrefix(
                "CEF:0|OpenAI|Audit Log|\(AuditShipperVersion.current)|api_key.created|api_key.created|\(cef)|"))
        #expect(cefLine.contains(#"cs3Label=rules cs3=rule-a,rule"b]"#), "\(cefLine)")
        let leefLine = SyslogFormats.leef(event, details: EventDetails(event))
        #expect(leefLine.contains("^sev=\(cef)^") && leefLine.contains(#"^rules=rule-a,rule"b]^"#), "\(leefLine)")
    }

    @Test(arguments: EventFormat.allCases)
    func aMarkedEventsLineReadsBackAsItsEvent(format: EventFormat) throws {
        // Found by the formats fuzzer: CEF's rules once followed the event and hid it.
        let event = try marked(.low)
        let line = format.lines([event], origin: SyslogFormatsTests.origin, annotated: true).dropLast()
        let receipt = Array(line).withUnsafeBufferPointer { format.receipt(ofLine: $0) }
        #expect(receipt?.id == event.id && receipt?.effectiveAt == event.effectiveAt, "\(format)")
    }

    @Test func anEventNoRuleMatchedKeepsTodaysSeverityAndNamesNoRule() throws {
        let event = try SyslogFormatsTests().event()
        #expect(EventSummary.priority(event) == 5)
        #expect(!SyslogFormats.cef(event, details: EventDetails(event)).contains("cs3"))
        let fields = JournalFields.fields(for: event, identifier: "openai-audit")
        #expect(!fields.contains { $0.name.hasPrefix("OPENAI_RULE") })
    }

    @Test func theJournalGetsThePriorityAndOneFieldPerRule() throws {
        let fields = JournalFields.fields(for: try marked(.high), identifier: "openai-audit")
        let text = fields.map { ($0.name, String(decoding: $0.value, as: UTF8.self)) }
        #expect(text.first { $0.0 == "PRIORITY" }?.1 == "3")
        #expect(text.filter { $0.0 == "OPENAI_RULE" }.map(\.1) == ["rule-a", "rule\"b]"])
        #expect(text.first { $0.0 == "OPENAI_RULE_LEVEL" }?.1 == "high")
    }
}
