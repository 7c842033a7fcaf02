#if canImport(Glibc)
    import Glibc
#endif

/// Reads one page of the API's JSON in a single pass and cuts it into events.
///
/// Each item of `data` keeps its own bytes (insignificant whitespace dropped, so an event is
/// one line): re-encoding through `JSONSerialization` would cost ten times more and could
/// change numbers or key order. Only `id`, `type` and `effective_at` are decoded. The whole
/// page is validated as JSON on the way: a page that is not JSON, or lacks `data` or
/// `has_more`, is an upstream error and the cycle makes no progress on it.
public enum PageScanner {
    public static func scan(_ bytes: [UInt8]) throws(MalformedPage) -> AuditPage {
        try bytes.withUnsafeBufferPointer { buffer throws(MalformedPage) in try scan(buffer) }
    }

    public static func scan(_ buffer: UnsafeBufferPointer<UInt8>) throws(MalformedPage) -> AuditPage {
        var reader = JSONByteReader(buffer)
        return try reader.page()
    }

    /// One event object alone (a line a sink wrote), validated like an item of `data`, with
    /// nothing but whitespace after it.
    public static func event(_ buffer: UnsafeBufferPointer<UInt8>) throws(MalformedPage) -> AuditEvent {
        var reader = JSONByteReader(buffer)
        reader.skipSpace()
        let event = try reader.event(index: 0)
        reader.skipSpace()
        guard reader.pos == buffer.count else { throw reader.fail("text after the event object") }
        return event
    }
}

/// A page that cannot be read; `offset` is the byte where reading stopped.
public struct MalformedPage: Error, CustomStringConvertible, Sendable {
    public let reason: String
    public let offset: Int
    public var description: String { "malformed page at byte \(offset): \(reason)" }
}

enum Byte {
    static let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
    static let openBrace = UInt8(ascii: "{"), closeBrace = UInt8(ascii: "}")
    static let openBracket = UInt8(ascii: "["), closeBracket = UInt8(ascii: "]")
    static let comma = UInt8(ascii: ","), colon = UInt8(ascii: ":"), minus = UInt8(ascii: "-")
    static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 }
    static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
}

struct JSONByteReader {
    let bytes: UnsafeBufferPointer<UInt8>
    var pos = 0
    /// The runs of whitespace skipped outside strings since `gaps` was cleared: exactly the
    /// bytes compaction drops, so an event is compacted by copying what lies between them.
    var gaps: [Range<Int>] = []

    init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    func fail(_ reason: String) -> MalformedPage { MalformedPage(reason: reason, offset: pos) }

    @inline(__always)
    mutating func skipSpace() {
        guard pos < bytes.count, Byte.isSpace(bytes[pos]) else { return }
        let start = pos
        repeat { pos += 1 } while pos < bytes.count && Byte.isSpace(bytes[pos])
        gaps.append(start..<pos)
    }

    @inline(__always)
    mutating func next() throws(MalformedPage) -> UInt8 {
        skipSpace()
        guard pos < bytes.count else { throw fail("unexpected end of page") }
        defer { pos += 1 }
        return bytes[pos]
    }

    @inline(__always)
    mutating func peek() throws(MalformedPage) -> UInt8 {
        skipSpace()
        guard pos < bytes.count else { throw fail("unexpected end of page") }
        return bytes[pos]
    }

    @inline(__always)
    mutating func expect(_ byte: UInt8, _ what: @autoclosure () -> String) throws(MalformedPage) {
        guard try next() == byte else {
            pos -= 1
            throw fail("expected \(what())")
        }
    }

    // MARK: page and events

    mutating func page() throws(MalformedPage) -> AuditPage {
        try expect(Byte.openBrace, "a JSON object")
        var events: [AuditEvent]?
        var hasMore: Bool?
        var firstID: String?
        var lastID: String?
        if try peek() == Byte.closeBrace {
            pos += 1
        } else {
            repeat {
                let key = try stringValue()
                try expect(Byte.colon, "':'")
                switch key {
                case "data": events = try eventArray()
                case "has_more":
                    guard let flag = try optionalBool() else { throw fail("has_more is not a boolean") }
                    hasMore = flag
                case "first_id": firstID = try optionalString("first_id")
                case "last_id": lastID = try optionalString("last_id")
                default: try skipValue(depth: 1)
                }
            } while try separator(close: Byte.closeBrace)
        }
        skipSpace()
        guard pos == bytes.count else { throw fail("unexpected bytes after the page object") }
        guard let events else { throw fail("the page has no \"data\" array") }
        guard let hasMore else { throw fail("the page has no \"has_more\" flag") }
        return AuditPage(events: events, hasMore: hasMore, firstID: firstID, lastID: lastID)
    }

    /// After a member or element: true for ',', false for the closing byte.
    @inline(__always)
    mutating func separator(close: UInt8) throws(MalformedPage) -> Bool {
        let c = try next()
        if c == Byte.comma { return true }
        if c == close { return false }
        pos -= 1
        throw fail("expected ',' or '\(Character(Unicode.Scalar(close)))'")
    }

    mutating func eventArray() throws(MalformedPage) -> [AuditEvent] {
        try expect(Byte.openBracket, "\"data\" to be an array")
        var events: [AuditEvent] = []
        if try peek() == Byte.closeBracket {
            pos += 1
            return events
        }
        repeat {
            skipSpace()
            events.append(try event(index: events.count))
        } while try separator(close: Byte.closeBracket)
        return events
    }

    mutating func event(index: Int) throws(MalformedPage) -> AuditEvent {
        let start = pos
        gaps.removeAll(keepingCapacity: true)
        try expect(Byte.openBrace, "data[\(index)] to be an object")
        var id: HashedID?
        var type: String?
        var effectiveAt: Int64?
        if try peek() == Byte.closeBrace {
            pos += 1
        } else {
            repeat {
                let key = try eventKey()
                try expect(Byte.colon, "':'")
                switch key {
                case .id: id = try idValue("data[\(index)].id")
                case .type: type = try typeName("data[\(index)].type")
                case .effectiveAt: effectiveAt = try integer("data[\(index)].effective_at")
                case .other: try skipValue(depth: 2)
                }
            } while try separator(close: Byte.closeBrace)
        }
        let raw = UnsafeBufferPointer(rebasing: bytes[start..<pos])
        guard let id, !id.isEmpty else { throw fail("data[\(index)] has no \"id\"") }
        guard let type else { throw fail("data[\(index)] (\(id)) has no \"type\"") }
        guard let effectiveAt else { throw fail("data[\(index)] (\(id)) has no \"effective_at\"") }
        let dropped = gaps.reduce(0) { $0 + $1.count }
        return AuditEvent.make(
            id: id, type: type, effectiveAt: effectiveAt, count: raw.count - dropped, spare: Self.copyOverrun
        ) { out in
            if gaps.isEmpty {
                out.baseAddress!.initialize(from: raw.baseAddress!, count: raw.count)
            } else {
                copy(start..<pos, without: gaps, to: UnsafeMutableRawPointer(out.baseAddress!))
            }
        }
    }

    /// How far past its end `copy` may write.
    static let copyOverrun = 16

    /// The bytes of `event` minus the whitespace runs `gaps` (which lie inside it), to `target`.
    ///
    /// The pieces between gaps are short (a token or two in `json.dumps` output), so each is
    /// copied sixteen bytes at a time rather than by a `memmove` call: a store may run past the
    /// piece's end into bytes the next piece overwrites, or up to `copyOverrun` bytes past the
    /// whole, which the target must have room for; a load never runs past the page.
    func copy(_ event: Range<Int>, without gaps: [Range<Int>], to target: UnsafeMutableRawPointer) {
        let source = bytes.baseAddress!
        let end = bytes.count
        var count = 0
        func piece(_ from: Int, _ until: Int) {
            var at = from
            while at < until {
                guard at + 16 <= end else {
                    (target + count).copyMemory(from: source + at, byteCount: until - at)
                    count += until - at
                    return
                }
                let low = UnsafeRawPointer(source + at).loadUnaligned(as: UInt64.self)
                let high = UnsafeRawPointer(source + at + 8).loadUnaligned(as: UInt64.self)
                (target + count).storeBytes(of: low, as: UInt64.self)
                (target + count + 8).storeBytes(of: high, as: UInt64.self)
                let step = min(16, until - at)
                at += step
                count += step
            }
        }
        var from = event.lowerBound
        for gap in gaps {
            piece(from, gap.lowerBound)
            from = gap.upperBound
        }
        piece(from, event.upperBound)
    }

    enum EventKey { case id, type, effectiveAt, other }

    /// An event member's name, compared as bytes: most names are neither of the three, and
    /// making a `String` of each would cost an allocation per member of every event.
    mutating func eventKey() throws(MalformedPage) -> EventKey {
        let (range, escaped) = try stringRange()
        if escaped {
            switch Self.unescape(UnsafeBufferPointer(rebasing: bytes[range])) {
            case "id": return .id
            case "type": return .type
            case "effective_at": return .effectiveAt
            default: return .other
            }
        }
        func equals(_ name: StaticString) -> Bool {
            range.count == name.utf8CodeUnitCount
                && memcmp(bytes.baseAddress! + range.lowerBound, name.utf8Start, range.count) == 0
        }
        switch range.count {
        case 2: return equals("id") ? .id : .other
        case 4: return equals("type") ? .type : .other
        case 12: return equals("effective_at") ? .effectiveAt : .other
        default: return .other
        }
    }
}
