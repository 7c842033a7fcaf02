import Synchronization

/// When the poll loop last showed life: a tick, a page, a batch. The watchdog pings only
/// while this is recent, that is, younger than the patience the poll interval allows.
public final class Heartbeat: Sendable {
    let last = Mutex(ContinuousClock.now)
    let patience = Mutex(Heartbeat.patience(interval: .seconds(60)))

    public init() {}

    /// Until when the API asked us to wait (`Retry-After`); nil when no such wait is on.
    let retryAfterUntil = Mutex<ContinuousClock.Instant?>(nil)

    public func beat() { last.withLock { $0 = .now } }

    /// A `Retry-After` wait begins (until `until`) or ends (nil): waiting as told is not failing.
    /// (`RetryPolicy.sleep`, which the wait runs in, beats from its first instant on.)
    public func waiting(until: ContinuousClock.Instant?) { retryAfterUntil.withLock { $0 = until } }

    /// A `Retry-After` wait is in progress.
    public var isWaitingAsTold: Bool { retryAfterUntil.withLock { $0.map { $0 > .now } ?? false } }

    public var age: Duration { ContinuousClock.now - last.withLock { $0 } }

    /// Set by the poll loop whenever its interval is (re)set.
    public func expectTicks(every interval: Duration) {
        patience.withLock { $0 = Heartbeat.patience(interval: interval) }
    }

    public var isStale: Bool { age >= patience.withLock { $0 } }

    /// A cycle may legitimately wait out retries (Retry-After up to 15 min); past that plus
    /// two polls without a page, batch or tick, the loop is stuck.
    static func patience(interval: Duration) -> Duration { interval * 2 + .seconds(1800) }
}
