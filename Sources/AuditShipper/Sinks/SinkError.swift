/// Why a sink did not take a batch.
public enum SinkError: Error, CustomStringConvertible, Sendable {
    case closed(sink: String, reason: String)
    case writeFailed(sink: String, reason: String)
    /// Sinks left behind by `once` or `replay` (name → why).
    case notDelivered([String: String])
    /// Sinks that failed `openai-auditd check` (name → why).
    case cannotOpen([String: String])

    public var description: String {
        switch self {
        case .closed(let sink, let reason): "sink \(sink) is closed: \(reason)"
        case .writeFailed(let sink, let reason): "sink \(sink) failed: \(reason)"
        case .notDelivered(let failures): Self.list(failures, "is not up to date")
        case .cannotOpen(let failures): Self.list(failures, "cannot be opened")
        }
    }

    static func list(_ failures: [String: String], _ what: String) -> String {
        failures.sorted { $0.key < $1.key }.map { "sink \($0.key) \(what): \($0.value)" }.joined(separator: "; ")
    }
}
