import Synchronization

/// What `/healthz` and `/readyz` answer: the poll loop is alive (the watchdog's own condition,
/// `Heartbeat`), and the daemon is ready (READY=1 was sent and the last cycle succeeded within
/// three poll intervals, or the API asked it to wait with `Retry-After` and it is waiting).
public final class ServiceHealth: Sendable {
    struct Status {
        var started = false
        var lastSuccess: ContinuousClock.Instant?
        var lastError: String?
        var interval: Duration = .seconds(60)
    }
    let heartbeat: Heartbeat
    let status = Mutex(Status())

    public init(heartbeat: Heartbeat) {
        self.heartbeat = heartbeat
    }

    public var isAlive: Bool { !heartbeat.isStale }

    /// READY=1 was sent with polls every `interval`.
    public func started(interval: Duration) {
        status.withLock {
            $0.started = true
            $0.interval = interval
        }
    }

    public func succeeded(interval: Duration) {
        status.withLock {
            $0.lastSuccess = .now
            $0.lastError = nil
            $0.interval = interval
        }
    }

    public func failed(_ reason: String, interval: Duration) {
        status.withLock {
            $0.lastError = reason
            $0.interval = interval
        }
    }

    /// nil when ready, else one line saying why not.
    public func notReadyReason(now: ContinuousClock.Instant = .now) -> String? {
        status.withLock { status -> String? in
            guard status.started else { return "not ready: starting" }
            let why = status.lastError.map { ": \($0.prefix(300))" } ?? ""
            guard let last = status.lastSuccess else { return "not ready: no poll has succeeded yet\(why)" }
            let age = now - last
            guard age <= status.interval * 3 || heartbeat.isWaitingAsTold else {
                return "not ready: the last successful poll was \(age.components.seconds)s ago\(why)"
            }
            return nil
        }
    }
}
