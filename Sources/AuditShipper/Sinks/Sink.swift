/// A destination for events. A batch counts as delivered only when `deliver` returns.
///
/// Contract: `deliver` returns only after every event of the batch is written and flushed to
/// where the sink hands off (a file descriptor, the journal socket, a completed TCP write);
/// it throws `SinkError` otherwise, and the cycle then leaves this sink's position where it
/// was (the other sinks go on). Once a write has started it is finished even if the task is
/// cancelled, so a shutdown never leaves half a batch behind.
///
/// A sink whose destination can tell which events of a batch it took hands them back through
/// `receipts` until the cycle has written its position (`positionRecorded`): after a failed
/// batch, or in a new process after `kill -9`, those events are not sent again. The journal
/// takes entries one by one and the sink records each (`ReceiptLog`); a file is read back
/// from where the last recorded position left it (`FileMark`). Sinks that cannot tell
/// (stdout, syslog) keep the defaults: a batch is all or nothing, and after `kill -9` at most
/// the batch in flight may arrive twice.
public protocol Sink: Sendable {
    /// Unique among the configured sinks: it keys the sink's position in the state file
    /// (`stdout`, `journald`, `syslog tcp://…`, or the configuration's `name:`).
    var name: String { get }
    /// Checked before `READY=1`, by `openai-auditd check`, and at the start of every cycle
    /// (`PollCycle.prepare`): a sink that fails it sits the cycle out. Keep it a cheap probe.
    func check() async throws
    func deliver(_ batch: [AuditEvent]) async throws
    /// Events given since the last `positionRecorded()` that the destination holds.
    func receipts() async throws -> [Receipt]
    /// The cycle wrote this sink's position durably: the record behind `receipts` may go.
    func positionRecorded() async throws
    /// Releases what the sink keeps open (a connection); called once it gets no more batches.
    func close() async
}

extension Sink {
    public func receipts() async throws -> [Receipt] { [] }
    public func positionRecorded() async throws {}
    public func close() async {}
}
