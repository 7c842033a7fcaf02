import Dispatch
import Synchronization

/// Sends a batch's entries with `sd_journal_sendv` on a queue of its own, never on the cycle's
/// event loop, and gives up waiting after `timeout`.
///
/// `sd_journal_sendv` blocks with no timeout when journald stops reading its socket (a
/// stopped or overloaded journald: the socket's queue fills). On the cycle's thread that
/// froze every sink and the watchdog with it. Here the wait is bounded: the batch fails after
/// `timeout` without an entry taken, the other sinks go on, and the blocked send finishes (or
/// not) on its own thread. Every entry the journal took is in the receipt log whenever it was
/// taken, so the retried batch repeats nothing; until the blocked send returns, the sink
/// reports itself busy instead of queueing another batch behind it.
final class JournalSender: Sendable {
    let queue = DispatchQueue(label: "openai-auditd.journal")
    /// The batch on the queue, if one is: whether it was given up, and since when it waits.
    let current = Mutex<Job?>(nil)
    let timeout: Duration

    final class Job: Sendable {
        let abandoned = Atomic(false)
        /// When the journal last took an entry of this batch (or the batch began).
        let progress = Mutex(ContinuousClock.now)
    }

    /// What a batch came to: every entry taken, or the first failure; and a receipt that
    /// could not be written, if any.
    enum Outcome: Sendable {
        case sent(unrecorded: StateError?)
        case failed(code: Int32, eventID: String)
    }

    init(timeout: Duration) {
        self.timeout = timeout
    }

    /// How long the batch still on the queue has gone without an entry taken, if one is:
    /// between batches, only one given up on and still blocked in its send.
    var blockedFor: Duration? {
        current.withLock { job in job.map { ContinuousClock.now - $0.progress.withLock { $0 } } }
    }

    /// Sends `batch`, recording each entry the journal took with `taken` (on the queue).
    /// Throws `Timeout` when the journal took nothing for `timeout`.
    func send(
        _ batch: [AuditEvent], entry: @escaping @Sendable (AuditEvent) -> [(name: String, value: [UInt8])],
        taken: @escaping @Sendable (AuditEvent) -> StateError?
    ) async throws -> Outcome {
        let job = Job()
        current.withLock { $0 = job }
        let result = Mutex<CheckedContinuation<Outcome, any Error>?>(nil)
        let timeout = self.timeout
        return try await withCheckedThrowingContinuation { continuation in
            result.withLock { $0 = continuation }
            @Sendable func finish(_ outcome: Result<Outcome, any Error>) {
                result.withLock { $0.take() }?.resume(with: outcome)
            }
            queue.async { [self] in
                var unrecorded: StateError?
                var outcome = Outcome.sent(unrecorded: nil)
                for event in batch {
                    // A batch given up on sends no more: the cycle retries it, and what was taken
                    // is in the receipts.
                    if job.abandoned.load(ordering: .acquiring) { break }
                    let code = JournaldSink.send(entry(event))
                    guard code >= 0 else {
                        outcome = .failed(code: code, eventID: event.id)
                        break
                    }
                    job.progress.withLock { $0 = .now }
                    // The entry is in the journal whatever happens to its receipt.
                    if let error = taken(event), unrecorded == nil { unrecorded = error }
                }
                if case .sent = outcome { outcome = .sent(unrecorded: unrecorded) }
                self.current.withLock { if $0 === job { $0 = nil } }
                finish(.success(outcome))
            }
            // The watch: the batch fails once the journal took nothing for `timeout`; it ends
            // with the batch.
            @Sendable func watch(after delay: Duration) {
                let nanoseconds = Int(delay.timeAmount.nanoseconds)
                DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) {
                    guard result.withLock({ $0 != nil }) else { return }
                    let idle = ContinuousClock.now - job.progress.withLock { $0 }
                    guard idle >= timeout else { return watch(after: timeout - idle) }
                    job.abandoned.store(true, ordering: .releasing)
                    finish(.failure(Timeout(waited: idle)))
                }
            }
            watch(after: timeout)
        }
    }

    /// The journal took no entry for `waited`.
    struct Timeout: Error {
        let waited: Duration
    }
}
