/// Parsing of the two kinds of time the configuration and command line take.
public enum TimeSpec {
    /// `30s`, `10m`, `1h`, `2d`, `500ms`, or plain seconds (`45`, `1.5`).
    public static func duration(_ text: String) -> Duration? {
        let text = text.trimmingSpaces.lowercased()
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        var number = Substring(text)
        var scale = 1.0
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            number = text.dropLast(suffix.count)
            scale = factor
            break
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
            let value = Double(number), value.isFinite
        else { return nil }
        let nanoseconds = value * scale * 1e9
        guard nanoseconds < 1e18 else { return nil }
        return .nanoseconds(Int64(nanoseconds.rounded()))
    }

    /// RFC 3339 (`2026-11-01T00:00:00Z`, an offset, a fraction, or a bare date), Unix seconds,
    /// or relative to `now` (`-7d`, `-12h`, `-30m`, `-45s`), as Unix seconds.
    public static func time(_ text: String, now: Int64) -> Int64? {
        let text = text.trimmingSpaces
        if let seconds = Int64(text), seconds >= 0 { return seconds }
        if text.hasPrefix("-"), let span = duration(String(text.dropFirst())) {
            return now - span.components.seconds
        }
        return rfc3339(text)
    }

    static func rfc3339(_ text: String) -> Int64? {
        let chars = Array(text.utf8)
        func number(_ from: Int, _ count: Int) -> Int64? {
            guard from + count <= chars.count else { return nil }
            return DecimalDigits.value(chars[from..<(from + count)])
        }
        guard let year = number(0, 4), chars.count >= 10, chars[4] == 0x2D, let month = number(5, 2), chars[7] == 0x2D,
            let day = number(8, 2), (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        let date = CivilCalendar.days(year: year, month: month, day: day) * 86_400
        if chars.count == 10 { return date }
        guard chars.count >= 20, [0x54, 0x74, 0x20].contains(chars[10]), let hour = number(11, 2), chars[13] == 0x3A,
            let minute = number(14, 2), chars[16] == 0x3A, let second = number(17, 2), hour < 24, minute < 60,
            second <= 60
        else { return nil }
        var index = 19
        if chars[index] == 0x2E {
            index += 1
            while index < chars.count, chars[index] >= 0x30 && chars[index] <= 0x39 { index += 1 }
        }
        guard index < chars.count else { return nil }
        var offset: Int64 = 0
        switch chars[index] {
        case 0x5A, 0x7A:
            guard index + 1 == chars.count else { return nil }
        case 0x2B, 0x2D:
            guard index + 6 == chars.count, let oh = number(index + 1, 2), chars[index + 3] == 0x3A,
                let om = number(index + 4, 2)
            else { return nil }
            offset = (oh * 3600 + om * 60) * (chars[index] == 0x2B ? 1 : -1)
        default: return nil
        }
        return date + hour * 3600 + minute * 60 + second - offset
    }

    /// `2026-11-01T00:00:00Z` for a Unix time.
    public static func format(_ seconds: Int64) -> String {
        // Floor division that cannot overflow: any Int64 renders (a year beyond 9999 has more digits).
        let remainder = seconds % 86_400
        let days = seconds / 86_400 - (remainder < 0 ? 1 : 0)
        let rest = remainder < 0 ? remainder + 86_400 : remainder
        let (year, month, day) = CivilCalendar.date(days: days)
        func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(year)-\(two(month))-\(two(day))T\(two(rest / 3600)):\(two(rest % 3600 / 60)):\(two(rest % 60))Z"
    }
}
