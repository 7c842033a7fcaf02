import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// The daemon's own log lines on stderr, in the format and at the level `settings` holds.
/// Events never go here; only diagnostics do.
public struct DiagnosticLogHandler: LogHandler {
    public let label: String
    let settings: LogSettings
    let write: @Sendable ([UInt8]) -> Void
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    public init(label: String, settings: LogSettings, write: @escaping @Sendable ([UInt8]) -> Void = Self.standardError)
    {
        self.label = label
        self.settings = settings
        self.write = write
    }

    public var logLevel: Logger.Level {
        get { settings.level }
        set {}
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let extra = event.metadata { all.merge(extra) { $1 } }
        write(
            Self.line(event.level, "\(event.message)", all, source: event.source, format: settings.format, label: label)
        )
    }

    /// One line, newline included. Control characters inside a message or value are escaped:
    /// the journal's stream would cut the line at a line break and file the rest without its
    /// priority. (JSON escapes them its own way.)
    public static func line(
        _ level: Logger.Level, _ message: String, _ metadata: Logger.Metadata, source: String, format: LogFormat,
        label: String, now: Date = Date()
    ) -> [UInt8] {
        let pairs = metadata.sorted { $0.key < $1.key }
        var out: [UInt8] = []
        switch format {
        case .json:
            out.append(contentsOf: #"{"time":"#.utf8)
            JSONString.append(Self.timestamp(now), to: &out)
            out.append(contentsOf: #","level":"#.utf8)
            JSONString.append(level.rawValue, to: &out)
            out.append(contentsOf: #","label":"#.utf8)
            JSONString.append(label, to: &out)
            out.append(contentsOf: #","message":"#.utf8)
            JSONString.append(message, to: &out)
            out.append(contentsOf: #","metadata":{"#.utf8)
            for (index, pair) in pairs.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                JSONString.append(pair.key, to: &out)
                out.append(UInt8(ascii: ":"))
                JSONString.append("\(pair.value)", to: &out)
            }
            out.append(contentsOf: #"},"source":"#.utf8)
            JSONString.append(source, to: &out)
            out.append(UInt8(ascii: "}"))
        case .journal, .auto:
            out.append(contentsOf: "<\(priority(level))>".utf8)
            out.append(contentsOf: oneLine(message).utf8)
            for (key, value) in pairs { out.append(contentsOf: " \(key)=\(fieldValue("\(value)"))".utf8) }
        case .text:
            var text = "\(timestamp(now)) \(level) \(label): \(oneLine(message))"
            for (key, value) in pairs { text += " \(key)=\(fieldValue("\(value)"))" }
            out.append(contentsOf: text.utf8)
        }
        out.append(0x0A)
        return out
    }

    /// syslog priorities (sd-daemon.h): trace and debug 7, info 6, notice 5, warning 4,
    /// error 3, critical 2.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// A metadata value as logfmt writes it: bare when it is one word, else in double quotes
    /// with `\` and `"` escaped. Server text reaches values (an API's error message), and a
    /// space in it must not start a field of its own: `error=boom state.complete_before=1970`
    /// would read as two fields to a log parser, or to a person's grep.
    public static func fieldValue(_ value: String) -> String {
        let text = oneLine(value)
        guard text.isEmpty || text.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) else { return text }
        // Escaped before the control characters, whose escapes (`\n`) must stay single.
        return "\"" + oneLine(value.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"")) + "\""
    }

    /// `text` with every control character escaped (`\n`, `\r`, `\t`, else `\u{1b}`): server
    /// strings reach log lines (error messages, ids), and a CR, LF or terminal escape in one
    /// must not forge a line or repaint the operator's terminal.
    public static func oneLine(_ text: String) -> String {
        func isControl(_ scalar: Unicode.Scalar) -> Bool {
            scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028
                || scalar.value == 0x2029
        }
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            guard isControl(scalar) else {
                out.append(scalar)
                continue
            }
            let escape =
                switch scalar {
                case "\n": "\\n"
                case "\r": "\\r"
                case "\t": "\\t"
                default: "\\u{\(String(scalar.value, radix: 16))}"
                }
            out.append(contentsOf: escape.unicodeScalars)
        }
        return String(out)
    }

    /// UTC, to the millisecond: `2026-11-28T03:04:05.678Z`.
    static func timestamp(_ date: Date) -> String {
        let interval = date.timeIntervalSince1970
        var seconds = time_t(interval.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S", &parts)
        let millis = Int((interval - interval.rounded(.down)) * 1000)
        let head = String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return head + "." + String(repeating: "0", count: millis < 10 ? 2 : millis < 100 ? 1 : 0) + "\(millis)Z"
    }

    /// Writes a whole line to fd 2 with one `write`, so concurrent lines never interleave.
    /// A line that cannot be written (stderr closed) is dropped: there is nowhere else to say so.
    public static let standardError: @Sendable ([UInt8]) -> Void = { bytes in
        _ = POSIX.writeAll(bytes, to: 2)
    }
}
