import Logging
import Synchronization

/// The level and format in force, which a reload may change: `--log-level` if given, else
/// `log.level`.
public final class LogSettings: Sendable {
    struct Values {
        var flag: Logger.Level?
        var file: Logger.Level
        var format: LogFormat
    }
    let values: Mutex<Values>

    public init(flag: Logger.Level? = nil, file: Logger.Level = .info, format: LogFormat = .text) {
        values = Mutex(Values(flag: flag, file: file, format: format))
    }

    public var level: Logger.Level { values.withLock { $0.flag ?? $0.file } }
    public var format: LogFormat { values.withLock { $0.format } }

    /// The line a command ends with when it fails: plain `openai-auditd: …` on a terminal, at
    /// error priority in the journal, an object in JSON.
    public func finalError(_ message: String) -> [UInt8] {
        let format = self.format
        guard format != .text else { return Array("openai-auditd: \(DiagnosticLogHandler.oneLine(message))\n".utf8) }
        return DiagnosticLogHandler.line(
            .error, "openai-auditd: \(message)", [:], source: "openai-auditd", format: format, label: "openai-auditd")
    }

    /// A reloaded configuration's level and (already resolved) format.
    public func reloaded(level: Logger.Level, format: LogFormat) {
        values.withLock {
            $0.file = level
            $0.format = format
        }
    }
}
