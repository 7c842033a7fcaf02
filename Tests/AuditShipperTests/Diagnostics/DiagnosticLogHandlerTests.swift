import AuditShipper
import Foundation
import Logging
import Synchronization
import Testing

/// The daemon's own log lines in each format, and `auto`'s choice.
@Suite struct DiagnosticLogHandlerTests {
    let at = Date(timeIntervalSince1970: 1_795_000_000.25)

    func line(_ level: Logger.Level, _ message: String, _ metadata: Logger.Metadata, _ format: LogFormat) -> String {
        String(
            decoding: DiagnosticLogHandler.line(
                level, message, metadata, source: "AuditShipper", format: format, label: "openai-auditd", now: at),
            as: UTF8.self)
    }

    @Test(arguments: [
        (Logger.Level.trace, 7), (.debug, 7), (.info, 6), (.notice, 5), (.warning, 4), (.error, 3), (.critical, 2),
    ])
    func journalLinesCarryTheSyslogPriorityAndNoTimestamp(level: Logger.Level, priority: Int) {
        let text = line(level, "sink failed", ["sink": "siem", "error": "refused\nagain"], .journal)
        #expect(
            text == "<\(priority)>sink failed error=refused\\nagain sink=siem\n", "one line, whatever the values hold")
    }

    @Test func jsonLinesAreOneObjectEach() throws {
        let text = line(.warning, "a \"quoted\"\nmessage", ["cycle.delivered": "12"], .json)
        #expect(text.hasSuffix("}\n") && text.filter { $0 == "\n" }.count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(object["time"] as? String == "2026-11-18T11:06:40.250Z")
        #expect(object["level"] as? String == "warning")
        #expect(object["message"] as? String == "a \"quoted\"\nmessage")
        #expect((object["metadata"] as? [String: String]) == ["cycle.delivered": "12"])
        #expect(object["source"] as? String == "AuditShipper")
    }

    @Test func textLinesHaveATimeTheLevelAndTheMessage() {
        #expect(
            line(.error, "cycle failed", ["error": "503"], .text)
                == "2026-11-18T11:06:40.250Z error openai-auditd: cycle failed error=503\n")
    }

    /// A value of more than one word is quoted (logfmt): server text in it cannot forge a field
    /// for a log parser, nor for the recovery recipe's grep of the position.
    @Test(arguments: [LogFormat.text, .journal])
    func aValueOfManyWordsIsQuotedSoThatNoFieldCanBeForged(_ format: LogFormat) {
        let hostile = #"boom state.complete_before=1970-01-01T00:00:00Z x="y\" z"#
        let text = line(.error, "cycle failed", ["error": "\(hostile)", "sink": "journald"], format)
        let prefix = format == .text ? "2026-11-18T11:06:40.250Z error openai-auditd: " : "<3>"
        let fields = #"error="boom state.complete_before=1970-01-01T00:00:00Z x=\"y\\\" z" sink=journald"#
        #expect(text == prefix + "cycle failed " + fields + "\n", "\(text)")
        #expect(DiagnosticLogHandler.fieldValue("") == "\"\"")
        #expect(DiagnosticLogHandler.fieldValue("2026-11-18T11:06:40Z") == "2026-11-18T11:06:40Z")
    }

    /// Server strings reach log lines (an API error message, an id in a malformed page): a CR,
    /// LF, terminal escape or C1 control in one is shown escaped, never acted on.
    @Test(arguments: [LogFormat.text, .journal])
    func controlCharactersFromTheServerAreEscaped(_ format: LogFormat) {
        let hostile = "bad\rforged line\u{1b}[2J\u{9b}31m\u{0}\tend"
        let text = line(.error, "upstream said \(hostile)", ["upstream.error": "\(hostile)"], format)
        let escaped = #"bad\rforged line\u{1b}[2J\u{9b}31m\u{0}\tend"#
        #expect(text.components(separatedBy: escaped).count == 3, "\(text)")
        #expect(!text.dropLast().unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) })
        let settings = LogSettings(format: .text)
        #expect(String(decoding: settings.finalError(hostile), as: UTF8.self) == "openai-auditd: \(escaped)\n")
    }

    /// sd-daemon's contract: `JOURNAL_STREAM` is `<device>:<inode>` of the stream; only when it
    /// names what stderr is does `auto` write priority prefixes.
    @Test func autoIsTheJournalFormatOnlyWhenJournalStreamNamesTheDescriptor() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/stream"
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let fd = open(path, O_WRONLY)
        defer { close(fd) }
        var info = stat()
        #expect(fstat(fd, &info) == 0)
        let stream = ["JOURNAL_STREAM": "\(info.st_dev):\(info.st_ino)"]
        #expect(LogFormat.auto.resolved(environment: stream, descriptor: fd) == .journal)
        #expect(LogFormat.auto.resolved(environment: ["JOURNAL_STREAM": "1:2"], descriptor: fd) == .text)
        #expect(LogFormat.auto.resolved(environment: [:], descriptor: fd) == .text)
        #expect(LogFormat.json.resolved(environment: stream, descriptor: fd) == .json)
        #expect(LogFormat.text.resolved(environment: stream, descriptor: fd) == .text)
    }

    @Test func theLevelAndFormatFollowTheSettings() {
        let written = Locked<[String]>([])
        let settings = LogSettings(file: .info, format: .journal)
        let logger = Logger(label: "openai-auditd") { label in
            DiagnosticLogHandler(label: label, settings: settings) { bytes in
                written.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) }
            }
        }
        logger.debug("hidden")
        logger.error("shown", metadata: ["sink": "journald"])
        settings.reloaded(level: .debug, format: .journal)
        logger.debug("now shown")
        #expect(written.withLock { $0 } == ["<3>shown sink=journald\n", "<7>now shown\n"])
        #expect(String(decoding: settings.finalError("bad key"), as: UTF8.self) == "<3>openai-auditd: bad key\n")
        #expect(
            String(decoding: LogSettings(format: .text).finalError("bad key"), as: UTF8.self)
                == "openai-auditd: bad key\n")
    }
}
