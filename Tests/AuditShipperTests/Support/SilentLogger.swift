import Logging

extension Logger {
    /// A logger that writes nothing, for the tests that do not read what is logged.
    static let silent = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
}
