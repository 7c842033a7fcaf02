/// libFuzzer target: any bytes as one event (wrapped into a page), through the four syslog
/// formatters (RFC 5424, RFC 3164, CEF, LEEF) with every payload. None may trap, and every
/// line must stay one line.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFormats(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes =
        Array(#"{"data":["#.utf8) + Array(UnsafeBufferPointer(start: data, count: size))
        + Array(#"],"has_more":false}"#.utf8)
    guard let page = try? PageScanner.scan(bytes) else { return 0 }
    let origin = SyslogOrigin(facility: 16, hostname: "host", appName: "openai-auditd", procID: "1")
    for event in page.events {
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
    }
    return 0
}
