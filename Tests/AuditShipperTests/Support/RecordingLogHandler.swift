import Logging

/// A logger that keeps the messages it is given, for the tests that read what is logged.
/// Unchecked: the messages are behind a lock; metadata and level are never set while it logs.
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
