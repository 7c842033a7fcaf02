#if canImport(Glibc)
    import Glibc
#endif

struct JSONByteReader {
    let bytes: UnsafeBufferPointer<UInt8>
    var pos = 0
    /// An event without its insignificant whitespace, built while it is read: each run of
    /// whitespace skipped outside strings sends the bytes before it here, so the bytes are
    /// copied once, in the pass that validates them. Room for the whole page plus the
    /// overrun of `keep`'s sixteen-byte stores.
    let compacted: UnsafeMutablePointer<UInt8>
    /// How many bytes `compacted` holds of the event being read.
    var compactedCount = 0
    /// The page bytes before this are in `compacted` or were whitespace.
    var keptUntil = 0

    /// A reader over `bytes` for the span of `body`, with its compaction buffer.
    static func reading<Result>(
        _ bytes: UnsafeBufferPointer<UInt8>, _ body: (inout JSONByteReader) throws(MalformedPage) -> Result
    ) throws(MalformedPage) -> Result {
        let compacted = UnsafeMutablePointer<UInt8>.allocate(capacity: bytes.count + copyOverrun)
        defer { compacted.deallocate() }
        var reader = JSONByteReader(bytes: bytes, compacted: compacted)
        return try body(&reader)
    }

    private init(bytes: UnsafeBufferPointer<UInt8>, compacted: UnsafeMutablePointer<UInt8>) {
        self.bytes = bytes
        self.compacted = compacted
    }

    func fail(_ reason: String) -> MalformedPage { MalformedPage(reason: reason, offset: pos) }

    @inline(__always)
    mutating func skipSpace() {
        guard pos < bytes.count, Byte.isSpace(bytes[pos]) else { return }
        let start = pos
        repeat { pos += 1 } while pos < bytes.count && Byte.isSpace(bytes[pos])
        drop(start..<pos)
    }

    /// `whitespace` (outside any string) is left out of the event being read: the bytes since
    /// the last run go to `compacted`.
    @inline(__always)
    mutating func drop(_ whitespace: Range<Int>) {
        keep(until: whitespace.lowerBound)
        keptUntil = whitespace.upperBound
    }

    /// The bytes from `keptUntil` to `until`, appended to `compacted`.
    ///
    /// The pieces between whitespace runs are short (a token or two in `json.dumps` output),
    /// so each is copied sixteen bytes at a time rather than by a `memmove` call: a store may
    /// run up to `copyOverrun` bytes past the piece's end, into room the next piece overwrites
    /// or `compacted`'s spare; a load never runs past the page.
    @inline(__always)
    mutating func keep(until: Int) {
        let source = bytes.baseAddress!
        var at = keptUntil
        var count = compactedCount
        while at < until {
            guard at + 16 <= bytes.count else {
                (compacted + count).update(from: source + at, count: until - at)
                count += until - at
                break
            }
            let low = UnsafeRawPointer(source + at).loadUnaligned(as: UInt64.self)
            let high = UnsafeRawPointer(source + at + 8).loadUnaligned(as: UInt64.self)
            UnsafeMutableRawPointer(compacted + count).storeBytes(of: low, as: UInt64.self)
            UnsafeMutableRawPointer(compacted + count + 8).storeBytes(of: high, as: UInt64.self)
            let step = min(16, until - at)
            at += step
            count += step
        }
        compactedCount = count
        keptUntil = until
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
        var unreadable: [UnreadableItem] = []
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
                case "data": (events, unreadable) = try items()
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
        var page = AuditPage(events: events, hasMore: hasMore, firstID: firstID, lastID: lastID)
        page.unreadable = unreadable
        return page
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

    /// The items of `data`: the events, and the items that are JSON but no event.
    mutating func items() throws(MalformedPage) -> ([AuditEvent], [UnreadableItem]) {
        try expect(Byte.openBracket, "\"data\" to be an array")
        var events: [AuditEvent] = []
        var unreadable: [UnreadableItem] = []
        if try peek() == Byte.closeBracket {
            pos += 1
            return (events, unreadable)
        }
        var index = 0
        repeat {
            skipSpace()
            switch try item(index: index) {
            case .event(let event) where event.effectiveAt <= 0:
                // Before any audit log existed: no position can cover it, so no sink would
                // ever be given it; set aside rather than dropped as a repeat.
                unreadable.append(
                    UnreadableItem(
                        index: index, id: event.id,
                        reason: "its effective_at \(event.effectiveAt) is not a time after 1970", json: event.json))
            case .event(let event): events.append(event)
            case .unreadable(let item): unreadable.append(item)
            }
            index += 1
        } while try separator(close: Byte.closeBracket)
        return (events, unreadable)
    }

    enum Item {
        case event(AuditEvent)
        case unreadable(UnreadableItem)
    }

    /// One item of `data`. Its syntax is checked as the page's (an error there is the page's);
    /// what it holds is not: a member of the wrong kind is skipped and named, so the item is
    /// still read to its end and kept whole.
    mutating func item(index: Int) throws(MalformedPage) -> Item {
        let start = pos
        compactedCount = 0
        keptUntil = start
        var id: HashedID?
        var type: (text: String, number: UInt32)?
        var effectiveAt: Int64?
        // The first thing found wrong with the item, if anything.
        var problem: String?
        func wrong(_ reason: String) { problem = problem ?? reason }
        if try peek() != Byte.openBrace {
            try skipValue(depth: 1)
            wrong("it is not an object")
        } else {
            pos += 1
            if try peek() == Byte.closeBrace {
                pos += 1
            } else {
                repeat {
                    let key = try eventKey()
                    try expect(Byte.colon, "':'")
                    let c = try peek()
                    let text = c == Byte.quote || c == UInt8(ascii: "n")
                    switch key {
                    case .id where text: id = try idValue("id")
                    case .type where text: type = try typeName("type")
                    case .effectiveAt where Byte.isDigit(c) || c == Byte.minus:
                        let range = try number()
                        effectiveAt = Self.seconds(UnsafeBufferPointer(rebasing: bytes[range]))
                        if effectiveAt == nil { wrong("its effective_at is out of range") }
                    case .id, .type, .effectiveAt:
                        try skipValue(depth: 2)
                        wrong(key == .effectiveAt ? "its effective_at is not a number" : "its \(key) is not a string")
                    case .other: try skipValue(depth: 2)
                    }
                } while try separator(close: Byte.closeBrace)
            }
            if id == nil || id!.isEmpty { wrong("it has no \"id\"") }
            if type == nil { wrong("it has no \"type\"") }
            if effectiveAt == nil { wrong("it has no \"effective_at\"") }
        }
        let raw = UnsafeBufferPointer(rebasing: bytes[start..<pos])
        // No whitespace inside (a compact page): the item's bytes are the page's own.
        let json: UnsafeBufferPointer<UInt8>
        if keptUntil == start {
            json = raw
        } else {
            keep(until: pos)
            json = UnsafeBufferPointer(start: compacted, count: compactedCount)
        }
        guard problem == nil, let id, let type, let effectiveAt else {
            let named = id.flatMap { $0.isEmpty ? nil : $0.text }
            return .unreadable(UnreadableItem(index: index, id: named, reason: problem!, json: Array(json)))
        }
        return .event(
            AuditEvent.make(
                id: id, type: type.text, typeNumber: type.number, effectiveAt: effectiveAt, count: json.count
            ) { out in
                out.baseAddress!.initialize(from: json.baseAddress!, count: json.count)
            })
    }

    /// How far past its end `keep` may write.
    static let copyOverrun = 16

    enum EventKey: CustomStringConvertible {
        case id, type, effectiveAt, other
        var description: String {
            switch self {
            case .id: "id"
            case .type: "type"
            case .effectiveAt: "effective_at"
            case .other: "member"
            }
        }
    }

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
