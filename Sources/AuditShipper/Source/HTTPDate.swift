/// The three date forms HTTP allows (IMF-fixdate, RFC 850, asctime), as Unix seconds.
enum HTTPDate {
    /// The three-letter month names, each as `word` makes it.
    static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        .map { word($0.utf8) }

    /// A short name as one integer, lowercased (bit 0x20 set on each byte), to compare names
    /// without making a string of each part.
    static func word(_ name: some Collection<UInt8>) -> UInt32 { name.reduce(0) { $0 << 8 | UInt32($1 | 0x20) } }

    /// Read from the header's bytes without making a string of each part: the `Date` of
    /// every response is read (the server's clock), a cost perf showed per request.
    static func parse(_ text: String) -> Int64? {
        var text = text
        return text.withUTF8 { parse(bytes: $0) }
    }

    static func parse(bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        func isSeparator(_ c: UInt8) -> Bool { c == 0x20 || c == UInt8(ascii: "-") || c == UInt8(ascii: ",") }
        var day: Int64?
        var month: Int64?
        var year: Int64?
        var clock: [Int64]?
        var at = 0
        while at < bytes.count {
            guard !isSeparator(bytes[at]) else {
                at += 1
                continue
            }
            let start = at
            while at < bytes.count, !isSeparator(bytes[at]) { at += 1 }
            let part = bytes[start..<at]
            if part.count == 3, let index = months.firstIndex(of: word(part)) {
                month = Int64(index + 1)
            } else if part.contains(UInt8(ascii: ":")) {
                let fields = part.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
                    .map(DecimalDigits.value)
                guard fields.count == 3, let hour = fields[0], let minute = fields[1], let second = fields[2] else {
                    return nil
                }
                clock = [hour, minute, second]
            } else if let value = DecimalDigits.value(part) {
                if day == nil, part.count <= 2 {
                    day = value
                    continue
                }
                year = part.count == 2 ? (value < 70 ? 2000 + value : 1900 + value) : value
            }
        }
        // Bounded fields: a server's header cannot make the arithmetic below overflow.
        guard let day, let month, let year, let clock, (1...31).contains(day), (1...9999).contains(year),
            (0...23).contains(clock[0]), (0...59).contains(clock[1]), (0...60).contains(clock[2])
        else { return nil }
        return CivilCalendar.days(year: year, month: month, day: day) * 86_400 + clock[0] * 3600 + clock[1] * 60
            + clock[2]
    }
}
