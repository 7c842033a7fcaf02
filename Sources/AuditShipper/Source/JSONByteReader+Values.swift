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
