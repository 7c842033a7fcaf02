/// A JSON string literal written from text: the one escaper for everything the daemon writes
/// as JSON itself (the state file, receipts, the record that stands in for an oversized event).
/// Events are never re-encoded; they keep the bytes the API sent.
public enum JSONString {
    /// Appends `text` quoted, with `"`, `\` and control characters escaped (RFC 8259 §7).
    public static func append(_ text: String, to out: inout [UInt8]) {
        out.append(0x22)
        for byte in text.utf8 {
            switch byte {
            case 0x22, 0x5C: out.append(contentsOf: [0x5C, byte])
            case 0..<0x20:
                out.append(contentsOf: [
                    0x5C, UInt8(ascii: "u"), 0x30, 0x30, hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 15)],
                ])
            default: out.append(byte)
            }
        }
        out.append(0x22)
    }

    /// `text` as a quoted JSON string.
    public static func quoted(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 2)
        append(text, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static let hexDigits = Array("0123456789abcdef".utf8)
}
