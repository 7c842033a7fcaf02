/// A JSON string literal written from text: the one escaper for everything the daemon writes
/// as JSON itself (the state file, receipts, the record that stands in for an oversized event).
/// Events are never re-encoded; they keep the bytes the API sent.
public enum JSONString {
    /// Appends `text` quoted, with `"`, `\` and control characters escaped (RFC 8259 §7).
    /// The runs between escapes are appended whole: the state file writes tens of thousands of
    /// ids at a time, and a byte at a time cost more than the rest of its writing.
    public static func append(_ text: String, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { append(utf8: $0, to: &out) }
    }

    /// Appends the text whose UTF-8 bytes are `bytes`, quoted (as `append(_:to:)`).
    public static func append(utf8 bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        out.append(0x22)
        var start = 0
        for index in bytes.indices {
            let byte = bytes[index]
            guard byte == 0x22 || byte == 0x5C || byte < 0x20 else { continue }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index]))
            if byte < 0x20 {
                out.append(contentsOf: [
                    0x5C, UInt8(ascii: "u"), 0x30, 0x30, hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 15)],
                ])
            } else {
                out.append(contentsOf: [0x5C, byte])
            }
            start = index + 1
        }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...]))
        out.append(0x22)
    }

    /// Appends `value` in decimal, without making a `String` of it.
    public static func append(integer value: Int64, to out: inout [UInt8]) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: Int64.min has 20 digits and a sign
        var magnitude = value.magnitude
        withUnsafeMutableBytes(of: &digits) { buffer in
            var at = buffer.count
            repeat {
                at -= 1
                buffer[at] = UInt8(truncatingIfNeeded: magnitude % 10) + 0x30
                magnitude /= 10
            } while magnitude > 0
            if value < 0 {
                at -= 1
                buffer[at] = UInt8(ascii: "-")
            }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[at...]))
        }
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
