/// A Sigma string value: compared whole and without regard to case, with `*` for any run of
/// characters and `?` for one (`\*`, `\?` and `\\` for themselves). `contains`, `startswith`
/// and `endswith` are this with `*` added; `cased` keeps case.
///
/// Compared as UTF-8 bytes, ASCII letters folded as they are read, so a match allocates
/// nothing; text with other letters is lowercased whole first.
struct SigmaPattern: Sendable, Equatable {
    enum Piece: Sendable, Equatable {
        case literal([UInt8])
        case any
        case one
    }

    let pieces: [Piece]
    let cased: Bool

    init(_ text: String, cased: Bool = false) {
        self.cased = cased
        var pieces: [Piece] = []
        var literal: [UInt8] = []
        var escaped = false
        func flush() {
            if !literal.isEmpty { pieces.append(.literal(literal)) }
            literal = []
        }
        for character in cased ? text : text.lowercased() {
            if escaped {
                // Only `*`, `?` and `\` are escaped; a backslash before anything else is itself.
                if character != "*" && character != "?" && character != "\\" { literal.append(UInt8(ascii: "\\")) }
                literal.append(contentsOf: String(character).utf8)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "*" {
                flush()
                if pieces.last != .any { pieces.append(.any) }
            } else if character == "?" {
                flush()
                pieces.append(.one)
            } else {
                literal.append(contentsOf: String(character).utf8)
            }
        }
        if escaped { literal.append(UInt8(ascii: "\\")) }
        flush()
        self.pieces = pieces
    }

    func matches(_ text: String) -> Bool {
        var text = text
        if !cased && !text.utf8.allSatisfy({ $0 < 0x80 }) { text = text.lowercased() }
        let fold = !cased
        return text.withUTF8 { bytes in Self.match(pieces[...], bytes, from: 0, fold: fold) }
    }

    private static func match(
        _ pieces: ArraySlice<Piece>, _ text: UnsafeBufferPointer<UInt8>, from start: Int, fold: Bool
    ) -> Bool {
        var pieces = pieces
        var at = start
        while let piece = pieces.first {
            switch piece {
            case .literal(let bytes):
                guard literal(bytes, in: text, at: at, fold: fold) else { return false }
                at += bytes.count
                pieces = pieces.dropFirst()
            case .one:
                // One character: a UTF-8 lead byte and its continuation bytes.
                guard at < text.count else { return false }
                at += 1
                while at < text.count, text[at] & 0xC0 == 0x80 { at += 1 }
                pieces = pieces.dropFirst()
            case .any:
                let rest = pieces.dropFirst()
                guard let following = rest.first else { return true }
                // `endswith`: only the end can match.
                if rest.count == 1, case .literal(let bytes) = following {
                    return text.count - at >= bytes.count
                        && literal(bytes, in: text, at: text.count - bytes.count, fold: fold)
                }
                // Try every place the rest could begin; patterns are short.
                var next = at
                while next <= text.count {
                    if match(rest, text, from: next, fold: fold) { return true }
                    next += 1
                }
                return false
            }
        }
        return at == text.count
    }

    /// Whether `bytes` (folded already unless `cased`) are in `text` at `at`.
    private static func literal(_ bytes: [UInt8], in text: UnsafeBufferPointer<UInt8>, at: Int, fold: Bool) -> Bool {
        guard at + bytes.count <= text.count else { return false }
        for (offset, byte) in bytes.enumerated() {
            var read = text[at + offset]
            if fold, read >= UInt8(ascii: "A"), read <= UInt8(ascii: "Z") { read += 32 }
            if read != byte { return false }
        }
        return true
    }
}
