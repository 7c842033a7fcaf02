#if canImport(Glibc)
    import Glibc
#endif

/// The byte reader's value readers: strings, numbers, literals, and skipping any value while
/// validating it.
extension JSONByteReader {

    mutating func optionalString(_ what: @autoclosure () -> String) throws(MalformedPage) -> String? {
        let c = try peek()
        if c == Byte.quote { return try stringValue() }
        if c == UInt8(ascii: "n") {
            try literal("null")
            return nil
        }
        throw fail("\(what()) is not a string")
    }

    /// An event's id (`optionalString`), made from the bytes without a `String` when they are
    /// ASCII with no escapes (as the API's are); else through the text, so invalid UTF-8 is
    /// replaced as in every other string read and the id equals the one the state holds.
    mutating func idValue(_ what: @autoclosure () -> String) throws(MalformedPage) -> HashedID? {
        guard try peek() == Byte.quote else { return try optionalString(what()).map(HashedID.init) }
        let (range, escaped) = try stringRange()
        let raw = UnsafeBufferPointer(rebasing: bytes[range])
        if !escaped, Self.isASCII(raw) { return HashedID(utf8: raw) }
        return HashedID(Self.text(raw, escaped: escaped))
    }

    /// No byte of `raw` has its high bit set (eight at a time).
    static func isASCII(_ raw: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = raw.baseAddress else { return true }
        var high: UInt64 = 0
        var at = 0
        while at + 8 <= raw.count {
            high |= UnsafeRawPointer(base + at).loadUnaligned(as: UInt64.self)
            at += 8
        }
        while at < raw.count {
            high |= UInt64(base[at])
            at += 1
        }
        return high & 0x8080_8080_8080_8080 == 0
    }

    /// An event's type (`optionalString`), made into a `String` once per process, and its
    /// number (`EventTypeNames`).
    mutating func typeName(_ what: @autoclosure () -> String) throws(MalformedPage) -> (
        text: String, number: UInt32
    )? {
        guard try peek() == Byte.quote else { return try optionalString(what()).map { ($0, 0) } }
        let (range, escaped) = try stringRange()
        return EventTypeNames.shared.name(UnsafeBufferPointer(rebasing: bytes[range])) {
            Self.text($0, escaped: escaped)
        }
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

    /// A validated number's text as whole seconds; nil beyond any time.
    static func seconds(_ text: UnsafeBufferPointer<UInt8>) -> Int64? {
        // Digits alone (what the API writes) are read as they are, without making a String.
        let negative = text[0] == Byte.minus
        if let value = DecimalDigits.value(text[(negative ? 1 : 0)...]) {
            return negative ? -value : value
        }
        let string = String(decoding: text, as: UTF8.self)
        if let value = Int64(string) { return value }
        // A fractional or exponent form is still a time: keep the event rather than stall.
        guard let value = Double(string), value.isFinite, abs(value) < 1e15 else { return nil }
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
    ///
    /// One loop over the bytes with the open containers as a bit stack, rather than a call per
    /// value: most of an event's bytes are in values nobody decodes (actor, target, details).
    /// Each place in the grammar is its own branch (a value starts; a value ended) instead of
    /// a state switched on, which the processor could not predict; and the position is a local,
    /// stored back only around the calls out (strings, numbers, literals, errors), since
    /// the reader is `inout` and every store to `pos` would go to memory.
    mutating func skipValue(depth: Int) throws(MalformedPage) {
        guard let base = bytes.baseAddress else { throw fail("unexpected end of page") }
        let end = bytes.count
        var at = pos
        // Bit i % 64 of word i / 64: whether the container opened at level i is an object.
        var objects = InlineArray<8, UInt64>(repeating: 0)
        var level = 0
        var inObject = false

        func failing(_ reason: String) -> MalformedPage {
            pos = at
            return fail(reason)
        }
        /// Past whitespace, recording the run for compaction; then the byte there.
        func token() throws(MalformedPage) -> UInt8 {
            if at < end, Byte.isSpace(base[at]) {
                let from = at
                repeat { at += 1 } while at < end && Byte.isSpace(base[at])
                drop(from..<at)
            }
            guard at < end else { throw failing("unexpected end of page") }
            return base[at]
        }
        /// Past the string whose opening quote is at `at` (the reader's one string scanner).
        func string() throws(MalformedPage) {
            pos = at + 1
            _ = try stringBody()
            at = pos
        }
        /// A member's name and its colon, `c` being the byte at `at`.
        func member(_ c: UInt8) throws(MalformedPage) {
            guard c == Byte.quote else { throw failing("expected a member name") }
            try string()
            guard try token() == Byte.colon else { throw failing("expected ':'") }
            at += 1
        }
        /// A number or literal, through the reader's own (rarer than strings).
        func scalar(_ c: UInt8) throws(MalformedPage) {
            pos = at
            switch c {
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            default:
                guard Byte.isDigit(c) || c == Byte.minus else {
                    throw fail("unexpected byte 0x\(String(c, radix: 16))")
                }
                _ = try number()
            }
            at = pos
        }

        while true {
            // A value starts here.
            let c = try token()
            if c == Byte.quote {
                try string()
            } else if c == Byte.openBrace || c == Byte.openBracket {
                guard depth + level < 512 else { throw failing("nesting deeper than 512") }
                inObject = c == Byte.openBrace
                let bit = UInt64(1) << (level & 63)
                objects[level >> 6] = inObject ? objects[level >> 6] | bit : objects[level >> 6] & ~bit
                level += 1
                at += 1
                let first = try token()
                if first != (inObject ? Byte.closeBrace : Byte.closeBracket) {
                    if inObject { try member(first) }
                    continue
                }
                at += 1
                level -= 1
            } else {
                try scalar(c)
            }
            // A value ended: close containers until one goes on with a comma.
            while level > 0 {
                inObject = objects[(level - 1) >> 6] & (UInt64(1) << ((level - 1) & 63)) != 0
                let c = try token()
                if c == Byte.comma {
                    at += 1
                    if inObject { try member(try token()) }
                    break
                }
                guard c == (inObject ? Byte.closeBrace : Byte.closeBracket) else {
                    throw failing(inObject ? "expected ',' or '}'" : "expected ',' or ']'")
                }
                at += 1
                level -= 1
            }
            if level == 0 {
                pos = at
                return
            }
        }
    }

    mutating func number() throws(MalformedPage) -> Range<Int> {
        let start = pos
        func digits(_ reader: inout JSONByteReader) -> Int {
            let from = reader.pos
            while reader.pos < reader.bytes.count, Byte.isDigit(reader.bytes[reader.pos]) { reader.pos += 1 }
            return reader.pos - from
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
        return try stringBody()
    }

    /// The bytes from `pos` (just after an opening quote) to the closing quote, validated.
    ///
    /// Eight bytes at a time: the first byte that is a quote, a backslash or a control character
    /// is found from the word's mask, so the bytes before it are never looked at one by one.
    /// The position is kept in a local and stored once: the reader is `inout`, and every store
    /// to `pos` would go to memory.
    @inline(__always)
    mutating func stringBody() throws(MalformedPage) -> (range: Range<Int>, escaped: Bool) {
        let start = pos
        let base = bytes.baseAddress!
        let end = bytes.count
        var at = pos
        var escaped = false
        while true {
            if at + 8 <= end {
                let attention = Self.attention(UnsafeRawPointer(base + at).loadUnaligned(as: UInt64.self))
                guard attention != 0 else {
                    at += 8
                    continue
                }
                at += attention.trailingZeroBitCount >> 3
            } else if at >= end {
                pos = at
                throw fail("unterminated string")
            }
            let c = base[at]
            if c == Byte.quote {
                pos = at + 1
                return (start..<at, escaped)
            }
            pos = at
            if c == Byte.backslash {
                escaped = true
                at = try escapeEnd()
            } else {
                // The last bytes of the page, read one at a time, can be ordinary ones.
                guard c >= 0x20 else { throw fail("control character in a string") }
                at += 1
            }
        }
    }

    /// Where the escape sequence at `pos` (a backslash) ends, validated.
    mutating func escapeEnd() throws(MalformedPage) -> Int {
        guard pos + 1 < bytes.count else { throw fail("unterminated string") }
        switch bytes[pos + 1] {
        case Byte.quote, Byte.backslash, UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
            UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            return pos + 2
        case UInt8(ascii: "u"):
            guard pos + 5 < bytes.count, (2...5).allSatisfy({ Self.hexValue(bytes[pos + $0]) != nil }) else {
                throw fail("invalid \\u escape")
            }
            return pos + 6
        default: throw fail("invalid escape in a string")
        }
    }

    /// The high bit of each byte of `word` that is `"`, `\\` or below 0x20, and no other bit:
    /// exact (no carries cross bytes), so the lowest set bit names the first such byte of a
    /// little-endian load.
    @inline(__always)
    static func attention(_ word: UInt64) -> UInt64 {
        let lows: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
        let highs: UInt64 = 0x8080_8080_8080_8080
        let ones: UInt64 = 0x0101_0101_0101_0101
        // A byte's high bit is set in `x + lows` (low seven bits only) iff its low seven bits
        // are not all zero; or-ing the byte itself back keeps bytes ≥ 0x80 non-zero.
        func zeros(_ x: UInt64) -> UInt64 { ~(((x & lows) &+ lows) | x) & highs }
        let quote = zeros(word ^ (ones &* 0x22))
        let backslash = zeros(word ^ (ones &* 0x5C))
        // Bytes below 0x20: adding 0x60 to the low seven bits sets the high bit iff they are
        // ≥ 0x20; a byte ≥ 0x80 has it already.
        let control = ~(((word & lows) &+ (ones &* 0x60)) | word) & highs
        return quote | backslash | control
    }

    mutating func stringValue() throws(MalformedPage) -> String {
        let (range, escaped) = try stringRange()
        return Self.text(UnsafeBufferPointer(rebasing: bytes[range]), escaped: escaped)
    }

    /// A validated string body as text: escapes decoded, invalid UTF-8 replaced.
    static func text(_ raw: UnsafeBufferPointer<UInt8>, escaped: Bool) -> String {
        escaped ? unescape(raw) : String(decoding: raw, as: UTF8.self)
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
