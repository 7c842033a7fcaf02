/// Unsigned decimal numbers read from bytes: the page reader's `effective_at`, the fields of
/// HTTP and RFC 3339 dates.
enum DecimalDigits {
    /// The value of `digits` when it is 1 to 18 ASCII digits and nothing else (18 cannot
    /// overflow an `Int64`); else nil.
    @inline(__always)
    static func value(_ digits: some Collection<UInt8>) -> Int64? {
        guard !digits.isEmpty, digits.count <= 18 else { return nil }
        var value: Int64 = 0
        for c in digits {
            guard c >= 0x30 && c <= 0x39 else { return nil }
            value = value * 10 + Int64(c &- 0x30)
        }
        return value
    }
}
