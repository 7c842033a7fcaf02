/// libFuzzer target: any bytes as one event (read as a sink's line is, so times a page would
/// set aside, at 0 or before, reach the formatters too), through the four syslog
/// formatters (RFC 5424, RFC 3164, CEF, LEEF) with every payload. None may trap, and every
/// line must stay one line. Each file sink format's line reads back as the event's id and
/// time (what the file sink learns after a crash). The same event marked by rules named after
/// its own type and id goes through them too, annotated JSON lines included.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFormats(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard let read = try? PageScanner.event(UnsafeBufferPointer(start: data, count: size)) else { return 0 }
    let marked = read.marked(Detection(rules: [read.type, read.id], level: SigmaLevel(rawValue: size % 5)!))
    for event in [read, marked] { check(event) }
    return 0
}

func check(_ event: AuditEvent) {
    let origin = SyslogOrigin(facility: 16, hostname: "host", appName: "openai-auditd", procID: "1")
    let details = EventDetails(event)
    for payload in SyslogPayload.allCases {
        for line in [
            SyslogFormats.rfc5424(event, details: details, origin: origin, payload: payload),
            SyslogFormats.rfc3164(event, details: details, origin: origin, payload: payload),
        ] {
            precondition(!line.contains(0x0A), "a syslog line with a line break")
        }
    }
    for line in [SyslogFormats.cef(event, details: details), SyslogFormats.leef(event, details: details)] {
        precondition(!line.utf8.contains(0x0A) && !line.utf8.contains(0x0D), "a CEF/LEEF line with a line break")
    }
    var withBOM = origin
    withBOM.bom = true
    for format in EventFormat.allCases {
        for origin in [origin, withBOM] {
            for annotated in [false, true] {
                var line: [UInt8] = []
                format.append(event, origin: origin, annotated: annotated, to: &line)
                let receipt = line.withUnsafeBufferPointer { format.receipt(ofLine: $0) }
                precondition(
                    receipt == Receipt(id: event.id, effectiveAt: event.effectiveAt),
                    "a \(format) line that does not read back as its event")
            }
        }
    }
}
