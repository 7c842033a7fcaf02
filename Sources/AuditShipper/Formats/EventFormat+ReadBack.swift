extension EventFormat {
    /// The event a line of this format carries (as `append` wrote it, without its newline):
    /// its id and `effective_at`, read from the event's own JSON, which every format keeps
    /// whole: the line itself (json), the MSG (rfc5424), `cs2` (cef), `event` (leef). nil when
    /// the line is not such a line. The file sink reads its file back with this after a crash.
    public func receipt(ofLine line: UnsafeBufferPointer<UInt8>) -> Receipt? {
        switch self {
        case .json:
            return Self.receipt(json: line)
        case .rfc5424:
            guard let start = Self.rfc5424Message(line) else { return nil }
            return Self.receipt(json: UnsafeBufferPointer(rebasing: line[start...]))
        case .cef:
            // `=` is escaped in every value, so the last bare one is the last key's: `cs2`.
            guard let equals = Self.lastUnescaped(UInt8(ascii: "="), in: line), equals >= 4,
                Array(line[(equals - 4)..<equals]) == Array(" cs2".utf8)
            else { return nil }
            let json = Self.unescape(
                UnsafeBufferPointer(rebasing: line[(equals + 1)...]),
                [UInt8(ascii: "n"): 0x0A, UInt8(ascii: "r"): 0x0D])
            return json.withUnsafeBufferPointer { Self.receipt(json: $0) }
        case .leef:
            // `^` is escaped in every value, so the last bare one starts the last attribute: `event`.
            guard let caret = Self.lastUnescaped(UInt8(ascii: "^"), in: line) else { return nil }
            let attribute = UnsafeBufferPointer(rebasing: line[(caret + 1)...])
            let key = Array("event=".utf8)
            guard attribute.count > key.count, Array(attribute.prefix(key.count)) == key else { return nil }
            let json = Self.unescape(
                UnsafeBufferPointer(rebasing: attribute[key.count...]),
                [UInt8(ascii: "n"): 0x0A, UInt8(ascii: "r"): 0x0D, UInt8(ascii: "t"): 0x09])
            return json.withUnsafeBufferPointer { Self.receipt(json: $0) }
        }
    }

    /// Whether `fragment` (the start of a line, cut short) can be the start of a line of this
    /// format: the file sink cuts a torn last line only when it may be its own.
    public func mayBeginLine(_ fragment: [UInt8]) -> Bool {
        let start: [UInt8] =
            switch self {
            case .json: Array(#"{"#.utf8)
            case .rfc5424: Array("<".utf8)
            case .cef: Array("CEF:".utf8)
            case .leef: Array("LEEF:".utf8)
            }
        return fragment.prefix(start.count).elementsEqual(start.prefix(fragment.count))
    }

    static func receipt(json: UnsafeBufferPointer<UInt8>) -> Receipt? {
        guard let event = try? PageScanner.event(json) else { return nil }
        return Receipt(id: event.id, effectiveAt: event.effectiveAt)
    }

    /// Where an RFC 5424 line's MSG starts: after the six header fields, the structured data
    /// (whose quoted values may hold an escaped `]`), one space and a byte order mark if any.
    static func rfc5424Message(_ line: UnsafeBufferPointer<UInt8>) -> Int? {
        let space = UInt8(ascii: " "), quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
        var i = 0
        var spaces = 0
        while i < line.count, spaces < 6 {
            if line[i] == space { spaces += 1 }
            i += 1
        }
        guard spaces == 6, i < line.count else { return nil }
        if line[i] == UInt8(ascii: "-") {
            i += 1
        } else {
            while i < line.count, line[i] == UInt8(ascii: "[") {
                i += 1
                var quoted = false
                while i < line.count {
                    let c = line[i]
                    if quoted, c == backslash {
                        i += 2
                        continue
                    }
                    if c == quote { quoted.toggle() } else if c == UInt8(ascii: "]"), !quoted { break }
                    i += 1
                }
                guard i < line.count else { return nil }
                i += 1
            }
        }
        guard i < line.count, line[i] == space else { return nil }
        i += 1
        if line.count - i >= 3, line[i] == 0xEF, line[i + 1] == 0xBB, line[i + 2] == 0xBF { i += 3 }
        return i
    }

    /// The offset of the last `byte` not escaped by a backslash.
    static func lastUnescaped(_ byte: UInt8, in line: UnsafeBufferPointer<UInt8>) -> Int? {
        var found: Int?
        var i = 0
        while i < line.count {
            if line[i] == UInt8(ascii: "\\") {
                i += 2
                continue
            }
            if line[i] == byte { found = i }
            i += 1
        }
        return found
    }

    /// `text` with `\x` turned back into `x`, or into `named[x]` (`\n` → line feed).
    static func unescape(_ text: UnsafeBufferPointer<UInt8>, _ named: [UInt8: UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            if text[i] == UInt8(ascii: "\\"), i + 1 < text.count {
                out.append(named[text[i + 1]] ?? text[i + 1])
                i += 2
            } else {
                out.append(text[i])
                i += 1
            }
        }
        return out
    }
}
