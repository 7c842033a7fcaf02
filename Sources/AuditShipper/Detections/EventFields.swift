#if canImport(Glibc)
    import Glibc
#endif

/// An event's JSON as a tree, read once for the rules that may match it, and its fields by
/// the paths Sigma rules name: `type`, `actor.session.ip_address`, `api_key.created.data.scopes`.
///
/// An audit event keeps its details under a key named after its type, dots and all
/// (`"api_key.created": {...}`), so a path's parts are matched against the longest key that
/// fits first, and every way a path can be read counts.
struct EventFields {
    /// A JSON value as the rules see it: a number keeps the text it was written with.
    indirect enum Value {
        case null
        case bool(Bool)
        case number(String)
        case string(String)
        case array([Value])
        case object([String: Value])

        /// A scalar as Sigma compares it: strings as they are, numbers and booleans as written.
        var text: String? {
            switch self {
            case .string(let string): string
            case .number(let number): number
            case .bool(let bool): bool ? "true" : "false"
            default: nil
            }
        }
    }

    let root: Value?

    /// The event's JSON read into a tree by `Parser`, a reader of its own: Foundation's
    /// decoder, asked for a value of unknown shape, cost a catch-up a third of its CPU (perf).
    /// Only what lies on `paths` is built (a tree of the rest would be thrown away unread).
    init(json: UnsafeBufferPointer<UInt8>, paths: FieldPaths = .everything) {
        var parser = Parser(bytes: json)
        root = parser.value(depth: 0, paths: paths)
    }

    /// An event seen by its `type` alone, for rules that read nothing else.
    init(typeOnly type: String) {
        root = .object(["type": .string(type)])
    }

    /// A strict enough JSON reader: the page reader has checked the event already, so what
    /// does not parse here reads as nothing (no rule matches it), never as an error.
    struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        var pos = 0
        /// Nesting beyond this reads as nothing: an event is never that deep.
        static let maxDepth = 64

        init(bytes: UnsafeBufferPointer<UInt8>) {
            self.bytes = bytes
        }

        mutating func skipSpace() {
            while pos < bytes.count,
                bytes[pos] == 0x20 || bytes[pos] == 0x0A || bytes[pos] == 0x0D || bytes[pos] == 0x09
            {
                pos += 1
            }
        }

        mutating func value(depth: Int, paths: FieldPaths) -> Value? {
            skipSpace()
            guard pos < bytes.count, depth < Self.maxDepth else { return nil }
            switch bytes[pos] {
            case UInt8(ascii: "{"):
                pos += 1
                var members: [String: Value] = [:]
                skipSpace()
                if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") {
                    pos += 1
                    return .object(members)
                }
                while true {
                    skipSpace()
                    guard let (raw, escaped) = stringBody() else { return nil }
                    skipSpace()
                    guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { return nil }
                    pos += 1
                    // A key is made a String only when it lies on a path (most do not).
                    let key = escaped ? JSONByteReader.text(raw, escaped: true) : nil
                    if let under = key.map({ paths.under(Array($0.utf8)[...]) }) ?? paths.under(raw[...]) {
                        guard let member = value(depth: depth + 1, paths: under) else { return nil }
                        members[key ?? String(decoding: raw, as: UTF8.self)] = member
                    } else {
                        guard skipValue(depth: depth + 1) else { return nil }
                    }
                    skipSpace()
                    guard pos < bytes.count else { return nil }
                    pos += 1
                    if bytes[pos - 1] == UInt8(ascii: "}") { return .object(members) }
                    guard bytes[pos - 1] == UInt8(ascii: ",") else { return nil }
                }
            case UInt8(ascii: "["):
                pos += 1
                var elements: [Value] = []
                skipSpace()
                if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") {
                    pos += 1
                    return .array(elements)
                }
                while true {
                    guard let element = value(depth: depth + 1, paths: paths) else { return nil }
                    elements.append(element)
                    skipSpace()
                    guard pos < bytes.count else { return nil }
                    pos += 1
                    if bytes[pos - 1] == UInt8(ascii: "]") { return .array(elements) }
                    guard bytes[pos - 1] == UInt8(ascii: ",") else { return nil }
                }
            case UInt8(ascii: "\""): return string().map(Value.string)
            case UInt8(ascii: "t"): return word("true", .bool(true))
            case UInt8(ascii: "f"): return word("false", .bool(false))
            case UInt8(ascii: "n"): return word("null", .null)
            default:
                let start = pos
                while pos < bytes.count, Self.isScalarByte(bytes[pos]) { pos += 1 }
                guard pos > start else { return nil }
                return .number(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self))
            }
        }

        /// A byte of a number, or of `true`, `false`, `null` (a byte test, not a set lookup:
        /// it runs for every byte of what is skipped).
        static func isScalarByte(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "+"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "E"):
                true
            default: false
            }
        }

        /// Past the value at `pos`, building nothing; false if it is not whole.
        mutating func skipValue(depth: Int) -> Bool {
            skipSpace()
            guard pos < bytes.count, depth < Self.maxDepth else { return false }
            switch bytes[pos] {
            case UInt8(ascii: "\""): return skipString()
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                var open = 0
                while pos < bytes.count {
                    switch bytes[pos] {
                    case UInt8(ascii: "\""):
                        guard skipString() else { return false }
                        continue
                    case UInt8(ascii: "{"), UInt8(ascii: "["): open += 1
                    case UInt8(ascii: "}"), UInt8(ascii: "]"):
                        open -= 1
                        if open == 0 {
                            pos += 1
                            return true
                        }
                    default: break
                    }
                    pos += 1
                }
                return false
            default:
                let start = pos
                while pos < bytes.count, Self.isScalarByte(bytes[pos]) { pos += 1 }
                return pos > start
            }
        }

        mutating func skipString() -> Bool {
            pos += 1
            while pos < bytes.count {
                // To the next quote at memchr's speed (a payload's long strings are what is
                // skipped most); it ends the string unless an odd run of backslashes escapes it.
                guard let base = bytes.baseAddress,
                    let found = memchr(base + pos, Int32(UInt8(ascii: "\"")), bytes.count - pos)
                else { return false }
                let quote = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
                var backslashes = 0
                while quote - backslashes - 1 >= pos, bytes[quote - backslashes - 1] == UInt8(ascii: "\\") {
                    backslashes += 1
                }
                pos = quote + 1
                if backslashes % 2 == 0 { return true }
            }
            return false
        }

        mutating func word(_ text: StaticString, _ value: Value) -> Value? {
            let count = text.utf8CodeUnitCount
            guard pos + count <= bytes.count else { return nil }
            for index in 0..<count where bytes[pos + index] != text.utf8Start[index] { return nil }
            pos += count
            return value
        }

        /// A string at `pos`, escapes resolved by the page reader's own decoder (the one
        /// unescaper); an escape that is not JSON's reads as nothing.
        mutating func string() -> String? {
            stringBody().map { JSONByteReader.text($0.raw, escaped: $0.escaped) }
        }

        /// The body of the string at `pos`, as it is written, and whether it has escapes; the
        /// position moves past it.
        mutating func stringBody() -> (raw: UnsafeBufferPointer<UInt8>, escaped: Bool)? {
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { return nil }
            pos += 1
            let start = pos
            var escaped = false
            while pos < bytes.count {
                switch bytes[pos] {
                case UInt8(ascii: "\""):
                    let raw = UnsafeBufferPointer(rebasing: bytes[start..<pos])
                    pos += 1
                    return (raw, escaped)
                case UInt8(ascii: "\\"):
                    // Checked here, as the decoder expects of a string the page reader passed.
                    guard pos + 1 < bytes.count else { return nil }
                    switch bytes[pos + 1] {
                    case UInt8(ascii: "u"):
                        guard pos + 6 <= bytes.count,
                            (pos + 2..<pos + 6).allSatisfy({ JSONByteReader.hexValue(bytes[$0]) != nil })
                        else { return nil }
                        pos += 6
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                        UInt8(ascii: "f"),
                        UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        pos += 2
                    default: return nil
                    }
                    escaped = true
                default: pos += 1
                }
            }
            return nil
        }
    }

    /// Every value at `path` (an array's elements each count as a value). Empty when there is none.
    func values(at path: [Substring]) -> [Value] {
        var found: [Value] = []
        Self.collect(root, path[...], into: &found)
        return found
    }

    private static func collect(_ node: Value?, _ path: ArraySlice<Substring>, into found: inout [Value]) {
        guard let node else { return }
        switch node {
        case .array(let elements):
            for element in elements { collect(element, path, into: &found) }
        case .object(let object) where !path.isEmpty:
            // A member whose key is the path's next parts (one, or several joined by dots).
            for (key, child) in object {
                if let rest = Self.rest(of: path, after: key) { collect(child, rest, into: &found) }
            }
        default:
            if path.isEmpty { found.append(node) }
        }
    }

    /// What is left of `path` once `key` (its next part, or next parts joined by dots) is
    /// taken from its front; nil when `key` is not its front.
    static func rest(of path: ArraySlice<Substring>, after key: String) -> ArraySlice<Substring>? {
        var index = path.startIndex
        var part = key.utf8[...]
        while true {
            guard index < path.endIndex else { return nil }
            let dot = part.firstIndex(of: UInt8(ascii: "."))
            guard path[index].utf8.elementsEqual(part[..<(dot ?? part.endIndex)]) else { return nil }
            index += 1
            guard let dot else { return path[index...] }
            part = part[part.index(after: dot)...]
        }
    }

    /// Whether `path` names a field that is there, even if null.
    func exists(_ path: [Substring]) -> Bool {
        Self.present(root, path[...])
    }

    private static func present(_ node: Value?, _ path: ArraySlice<Substring>) -> Bool {
        guard let node else { return false }
        if path.isEmpty { return true }
        switch node {
        case .array(let elements): return elements.contains { present($0, path) }
        case .object(let object):
            return object.contains { key, child in Self.rest(of: path, after: key).map { present(child, $0) } ?? false }
        default: return false
        }
    }
}
