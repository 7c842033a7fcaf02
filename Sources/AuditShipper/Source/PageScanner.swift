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
        var cursor = JSONCursor(buffer)
        return try cursor.page()
    }
}

/// A page that cannot be read; `offset` is the byte where reading stopped.
public struct MalformedPage: Error, CustomStringConvertible, Sendable {
    public let reason: String
    public let offset: Int
    public var description: String { "malformed page at byte \(offset): \(reason)" }
}

private enum Byte {
    static let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
    static let openBrace = UInt8(ascii: "{"), closeBrace = UInt8(ascii: "}")
    static let openBracket = UInt8(ascii: "["), closeBracket = UInt8(ascii: "]")
    static let comma = UInt8(ascii: ","), colon = UInt8(ascii: ":"), minus = UInt8(ascii: "-")
    static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 }
    static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
}

private struct JSONCursor {
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
        var id: String?
        var type: String?
        var effectiveAt: Int64?
        if try peek() == Byte.closeBrace {
            pos += 1
        } else {
            repeat {
                let key = try eventKey()
                try expect(Byte.colon, "':'")
                switch key {
                case .id: id = try optionalString("data[\(index)].id")
                case .type: type = try optionalString("data[\(index)].type")
                case .effectiveAt: effectiveAt = try integer("data[\(index)].effective_at")
                case .other: try skipValue(depth: 2)
                }
            } while try separator(close: Byte.closeBrace)
        }
        let raw = UnsafeBufferPointer(rebasing: bytes[start..<pos])
        guard let id, !id.isEmpty else { throw fail("data[\(index)] has no \"id\"") }
        guard let type else { throw fail("data[\(index)] (\(id)) has no \"type\"") }
        guard let effectiveAt else { throw fail("data[\(index)] (\(id)) has no \"effective_at\"") }
        let json = gaps.isEmpty ? Array(raw) : Self.copy(raw, from: start, without: gaps)
        return AuditEvent(id: id, type: type, effectiveAt: effectiveAt, json: json)
    }

    /// The bytes of `raw` (which starts at `offset`) minus the whitespace runs `gaps`.
    static func copy(_ raw: UnsafeBufferPointer<UInt8>, from offset: Int, without gaps: [Range<Int>]) -> [UInt8] {
        let dropped = gaps.reduce(0) { $0 + $1.count }
        return [UInt8](unsafeUninitializedCapacity: raw.count - dropped) { out, written in
            guard let source = raw.baseAddress, let target = out.baseAddress else { return }
            var count = 0
            var from = 0
            for gap in gaps {
                let until = gap.lowerBound - offset
                (target + count).update(from: source + from, count: until - from)
                count += until - from
                from = gap.upperBound - offset
            }
            (target + count).update(from: source + from, count: raw.count - from)
            written = count + raw.count - from
        }
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

    // MARK: values

    mutating func optionalString(_ what: @autoclosure () -> String) throws(MalformedPage) -> String? {
        let c = try peek()
        if c == Byte.quote { return try stringValue() }
        if c == UInt8(ascii: "n") {
            try literal("null")
            return nil
        }
        throw fail("\(what()) is not a string")
    }

    mutating func optionalBool() throws(MalformedPage) -> Bool? {
        switch try peek() {
        case UInt8(ascii: "t"):
            try literal("true")
            return true
        case UInt8(ascii: "f"):
            try literal("false")
            return false
        default:
            try skipValue(depth: 1)
            return nil
        }
    }

    mutating func integer(_ what: @autoclosure () -> String) throws(MalformedPage) -> Int64 {
        guard Byte.isDigit(try peek()) || bytes[pos] == Byte.minus else { throw fail("\(what()) is not a number") }
        let range = try number()
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
        if let value = Int64(text) { return value }
        // A fractional or exponent form is still a time: keep the event rather than stall.
        guard let value = Double(text), value.isFinite, abs(value) < 1e15 else {
            throw fail("\(what()) is out of range")
        }
        return Int64(value.rounded(.down))
    }

    mutating func literal(_ word: StaticString) throws(MalformedPage) {
        let n = word.utf8CodeUnitCount
        guard pos + n <= bytes.count else { throw fail("unexpected end of page") }
        for i in 0..<n where bytes[pos + i] != word.utf8Start[i] {
            throw fail("invalid literal")
        }
        pos += n
    }

    /// Validates any JSON value and moves past it.
    mutating func skipValue(depth: Int) throws(MalformedPage) {
        guard depth < 512 else { throw fail("nesting deeper than 512") }
        let c = try peek()
        switch c {
        case Byte.quote: _ = try stringRange()
        case Byte.openBrace:
            pos += 1
            if try peek() == Byte.closeBrace {
                pos += 1
                return
            }
            repeat {
                guard try peek() == Byte.quote else { throw fail("expected a member name") }
                _ = try stringRange()
                try expect(Byte.colon, "':'")
                try skipValue(depth: depth + 1)
            } while try separator(close: Byte.closeBrace)
        case Byte.openBracket:
            pos += 1
            if try peek() == Byte.closeBracket {
                pos += 1
                return
            }
            repeat { try skipValue(depth: depth + 1) } while try separator(close: Byte.closeBracket)
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default:
            guard Byte.isDigit(c) || c == Byte.minus else { throw fail("unexpected byte 0x\(String(c, radix: 16))") }
            _ = try number()
        }
    }

    mutating func number() throws(MalformedPage) -> Range<Int> {
        let start = pos
        func digits(_ cursor: inout JSONCursor) -> Int {
            let from = cursor.pos
            while cursor.pos < cursor.bytes.count, Byte.isDigit(cursor.bytes[cursor.pos]) { cursor.pos += 1 }
            return cursor.pos - from
        }
        if pos < bytes.count, bytes[pos] == Byte.minus { pos += 1 }
        let intStart = pos
        guard digits(&self) > 0 else { throw fail("invalid number") }
        if bytes[intStart] == UInt8(ascii: "0"), pos - intStart > 1 { throw fail("number with a leading zero") }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: ".") {
            pos += 1
            guard digits(&self) > 0 else { throw fail("invalid number") }
        }
        if pos < bytes.count, bytes[pos] | 0x20 == UInt8(ascii: "e") {
            pos += 1
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "+") || bytes[pos] == Byte.minus { pos += 1 }
            guard digits(&self) > 0 else { throw fail("invalid number") }
        }
        return start..<pos
    }

    /// The bytes between the quotes, validated; `escaped` when a backslash occurs.
    mutating func stringRange() throws(MalformedPage) -> (range: Range<Int>, escaped: Bool) {
        try expect(Byte.quote, "a string")
        let start = pos
        var escaped = false
        while pos < bytes.count {
            // Eight bytes at a time while none is a quote, a backslash or a control character.
            if pos + 8 <= bytes.count {
                let word = UnsafeRawPointer(bytes.baseAddress! + pos).loadUnaligned(as: UInt64.self)
                if !Self.needsAttention(word) {
                    pos += 8
                    continue
                }
            }
            let c = bytes[pos]
            if c == Byte.quote {
                pos += 1
                return (start..<(pos - 1), escaped)
            }
            if c == Byte.backslash {
                escaped = true
                guard pos + 1 < bytes.count else { break }
                let e = bytes[pos + 1]
                switch e {
                case Byte.quote, Byte.backslash, UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                    UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    pos += 2
                case UInt8(ascii: "u"):
                    guard pos + 5 < bytes.count, (2...5).allSatisfy({ Self.hexValue(bytes[pos + $0]) != nil }) else {
                        throw fail("invalid \\u escape")
                    }
                    pos += 6
                default: throw fail("invalid escape in a string")
                }
                continue
            }
            guard c >= 0x20 else { throw fail("control character in a string") }
            pos += 1
        }
        throw fail("unterminated string")
    }

    /// Whether any byte of `word` is `"`, `\\` or below 0x20 (the classic "has zero byte" trick).
    @inline(__always)
    static func needsAttention(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        func hasZero(_ v: UInt64) -> UInt64 { (v &- ones) & ~v & highs }
        let quote = hasZero(word ^ (ones &* 0x22))
        let backslash = hasZero(word ^ (ones &* 0x5C))
        let control = (word &- ones &* 0x20) & ~word & highs
        return (quote | backslash | control) != 0
    }

    mutating func stringValue() throws(MalformedPage) -> String {
        let (range, escaped) = try stringRange()
        let raw = UnsafeBufferPointer(rebasing: bytes[range])
        return escaped ? Self.unescape(raw) : String(decoding: raw, as: UTF8.self)
    }

    static func hexValue(_ c: UInt8) -> UInt32? {
        switch c {
        case 0x30...0x39: UInt32(c - 0x30)
        case 0x41...0x46: UInt32(c - 0x41 + 10)
        case 0x61...0x66: UInt32(c - 0x61 + 10)
        default: nil
        }
    }

    /// Decodes the escapes of an already validated string body.
    static func unescape(_ raw: UnsafeBufferPointer<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = 0
        func hex4(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 << 4 | (hexValue(raw[at + $1]) ?? 0) } }
        while i < raw.count {
            let c = raw[i]
            guard c == Byte.backslash else {
                out.append(c)
                i += 1
                continue
            }
            let e = raw[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = hex4(i)
                i += 4
                if (0xD800..<0xDC00).contains(scalar), i + 6 <= raw.count, raw[i] == Byte.backslash,
                    raw[i + 1] == UInt8(ascii: "u")
                {
                    let low = hex4(i + 2)
                    if (0xDC00..<0xE000).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        i += 6
                    }
                }
                out.append(contentsOf: String(Character(Unicode.Scalar(scalar) ?? "\u{FFFD}")).utf8)
            default: out.append(e)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
