import Logging

extension Logger {
    /// A logger that writes nothing, for the tests that do not read what is logged.
    static let silent = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
}

/// A logger that keeps the messages it is given, for the tests that read what is logged.
final class RecordingLogHandler: LogHandler, @unchecked Sendable {
    let messages = Locked<[(level: Logger.Level, message: String)]>([])
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        messages.withLock { $0.append((event.level, "\(event.message)")) }
    }

    var logger: Logger { Logger(label: "test", factory: { _ in self }) }
}
