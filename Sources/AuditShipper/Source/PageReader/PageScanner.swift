#if canImport(Glibc)
    import Glibc
#endif

/// Reads one page of the API's JSON in a single pass and cuts it into events.
///
/// Each item of `data` keeps its own bytes (insignificant whitespace dropped, so an event is
/// one line): re-encoding through `JSONSerialization` would cost ten times more and could
/// change numbers or key order. Only `id`, `type` and `effective_at` are decoded. The whole
/// page is validated as JSON on the way: a page that is not JSON, or lacks `data` or
/// `has_more`, is an upstream error and the cycle makes no progress on it. An item that is
/// JSON but not an event the cycle can read (no id, a `type` that is not a string, an
/// `effective_at` that is not a number) is `AuditPage.unreadable`, not an error: one such item
/// must not stop the page, or every sink would stall on it for good.
public enum PageScanner {
    public static func scan(_ bytes: [UInt8]) throws(MalformedPage) -> AuditPage {
        try bytes.withUnsafeBufferPointer { buffer throws(MalformedPage) in try scan(buffer) }
    }

    public static func scan(_ buffer: UnsafeBufferPointer<UInt8>) throws(MalformedPage) -> AuditPage {
        try JSONByteReader.reading(buffer) { reader throws(MalformedPage) in try reader.page() }
    }

    /// One event object alone (a line a sink wrote), validated like an item of `data`, with
    /// nothing but whitespace after it.
    public static func event(_ buffer: UnsafeBufferPointer<UInt8>) throws(MalformedPage) -> AuditEvent {
        try JSONByteReader.reading(buffer) { reader throws(MalformedPage) in
            reader.skipSpace()
            let item = try reader.item(index: 0)
            reader.skipSpace()
            guard reader.pos == buffer.count else { throw reader.fail("text after the event object") }
            switch item {
            case .event(let event): return event
            case .unreadable(let item): throw MalformedPage(reason: "not an event: \(item.reason)", offset: 0)
            }
        }
    }
}
