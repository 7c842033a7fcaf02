/// libFuzzer target: any bytes as a page of the audit log API. The reader either cuts it into
/// events (and items that are no event) or throws `MalformedPage`; it must never trap, read out of bounds (AddressSanitizer)
/// or hand out an event whose bytes are not valid, one-line JSON of its own.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPage(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let buffer = UnsafeBufferPointer(start: data, count: size)
    guard let page = try? PageScanner.scan(buffer) else { return 0 }
    for event in page.events {
        // An event's bytes are compact: no line break may reach a line-oriented sink.
        precondition(!event.json.contains(0x0A) && !event.json.contains(0x0D), "an event with a line break")
        precondition(event.json.first == UInt8(ascii: "{") && event.json.last == UInt8(ascii: "}"))
        // The event re-scans as a page of one with the same identity and the same bytes.
        let again = try! PageScanner.scan(Array(#"{"data":["#.utf8) + event.json + Array(#"],"has_more":false}"#.utf8))
        precondition(
            again.events.count == 1 && again.events[0].id == event.id
                && again.events[0].effectiveAt == event.effectiveAt && again.events[0].json == event.json)
    }
    for item in page.unreadable {
        // An item set aside is written whole into the dead-letter file's lines: compact too.
        precondition(!item.json.contains(0x0A) && !item.json.contains(0x0D), "an item with a line break")
    }
    return 0
}
