/// A destination for events. A batch counts as delivered only when `deliver` returns.
///
/// Contract: `deliver` returns only after every event of the batch is written and flushed to
/// where the sink hands off (a file descriptor, the journal socket, a completed TCP write);
/// it throws `SinkError` otherwise, and the cycle then leaves the state where it was. Once a
/// write has started it is finished even if the task is cancelled, so a shutdown never
/// leaves half a batch behind.
public protocol Sink: Sendable {
    /// A short name for logs and errors (`stdout`, `journald`, `syslog tcp://…`).
    var name: String { get }
    /// Checked before `READY=1` and by `openai-auditd check`.
    func check() async throws
    func deliver(_ batch: [AuditEvent]) async throws
    /// Releases what the sink keeps open (a connection); called once it gets no more batches.
    func close() async
}

extension Sink {
    public func close() async {}
}

/// Why a sink did not take a batch.
public enum SinkError: Error, CustomStringConvertible, Sendable {
    case closed(sink: String, reason: String)
    case writeFailed(sink: String, reason: String)

    public var description: String {
        switch self {
        case .closed(let sink, let reason): "sink \(sink) is closed: \(reason)"
        case .writeFailed(let sink, let reason): "sink \(sink) failed: \(reason)"
        }
    }
}
