/// The three date forms HTTP allows (IMF-fixdate, RFC 850, asctime), as Unix seconds.
enum HTTPDate {
    static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    static func parse(_ text: String) -> Int64? {
        let parts = text.split(whereSeparator: { $0 == " " || $0 == "-" || $0 == "," }).map(String.init)
        var day: Int64?
        var month: Int64?
        var year: Int64?
        var clock: [Int64]?
        for part in parts {
            if let index = months.firstIndex(of: part.prefix(3).lowercased()), part.count == 3 {
                month = Int64(index + 1)
            } else if part.contains(":") {
                let fields = part.split(separator: ":").compactMap { Int64($0) }
                guard fields.count == 3 else { return nil }
                clock = fields
            } else if let number = Int64(part) {
                if day == nil, part.count <= 2 {
                    day = number
                    continue
                }
                year = part.count == 2 ? (number < 70 ? 2000 + number : 1900 + number) : number
            }
        }
        // Bounded fields: a server's header cannot make the arithmetic below overflow.
        guard let day, let month, let year, let clock, (1...31).contains(day), (1...9999).contains(year),
            (0...23).contains(clock[0]), (0...59).contains(clock[1]), (0...60).contains(clock[2])
        else { return nil }
        return daysFromCivil(year: year, month: month, day: day) * 86_400 + clock[0] * 3600 + clock[1] * 60 + clock[2]
    }

    /// Howard Hinnant's days_from_civil.
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
