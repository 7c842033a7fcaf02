import Synchronization

/// How long to wait before the next attempt at something that failed in a retryable way: the
/// one backoff of the daemon. The retry layers (docs/ARCHITECTURE.md): the API client retries
/// a request (`APIClient.page`); a syslog stream reconnects no sooner than this says
/// (`StreamTransport`); and whatever still fails ends the cycle, which the next poll starts
/// over (`AuditService`), so a poll interval is the outermost backoff.
///
/// 429 honours `Retry-After` (seconds or an HTTP-date, capped at `maxRetryAfter`); every other
/// retryable failure backs off exponentially from `baseDelay` to `maxDelay` with equal jitter
/// (a random point in the upper half of each step), so many daemons started together do not
/// retry in step.
public struct RetryPolicy: Sendable {
    public var maxAttempts: Int
    public var baseDelay: Duration
    public var maxDelay: Duration
    public var maxRetryAfter: Duration
    /// The most one cycle waits on `Retry-After` in all: past it the cycle fails and the next
    /// poll starts over, instead of one cycle sleeping through hours of rate limiting.
    public var maxRetryAfterPerCycle: Duration
    /// How one step of a wait is slept: `Task.sleep`. Tests pass one that records the step and
    /// returns at once, so a `Retry-After` of seconds costs them none.
    public var pause: @Sendable (Duration) async throws -> Void

    public init(
        maxAttempts: Int = 8, baseDelay: Duration = .milliseconds(500), maxDelay: Duration = .seconds(60),
        maxRetryAfter: Duration = .seconds(900), maxRetryAfterPerCycle: Duration = .seconds(1800),
        pause: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }
    ) {
        self.pause = pause
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxRetryAfter = maxRetryAfter
        self.maxRetryAfterPerCycle = maxRetryAfterPerCycle
    }

    /// `Retry-After` time waited in the current cycle, shared by every copy of a client.
    public final class Budget: Sendable {
        let spent = Mutex(Duration.zero)

        public init() {}

        /// Takes `wait` from what is left of `limit`; false (taking nothing) if it does not fit.
        func take(_ wait: Duration, limit: Duration) -> Bool {
            spent.withLock { spent in
                guard spent + wait <= limit else { return false }
                spent += wait
                return true
            }
        }

        func reset() { spent.withLock { $0 = .zero } }
    }

    /// Sleeps `wait` in steps of at most a second and beats `heartbeat` at each: a retry that
    /// waits is a live loop, so the watchdog keeps being fed through the longest `Retry-After`.
    public func sleep(_ wait: Duration, beating heartbeat: Heartbeat?) async throws {
        var left = wait
        while true {
            heartbeat?.beat()
            guard left > .zero else { return }
            let step = min(left, .seconds(1))
            try await pause(step)
            left -= step
        }
    }

    /// The wait after failed attempt number `attempt` (1-based).
    public func delay(afterAttempt attempt: Int, retryAfter: Duration?) -> Duration {
        if let retryAfter { return min(max(retryAfter, .zero), maxRetryAfter) }
        let exponent = min(attempt - 1, 30)
        let ceiling = min(baseDelay * (1 << exponent), maxDelay)
        // Equal jitter, in [ceiling/2, ceiling]: never zero, never in step with other clients.
        return ceiling / 2 + ceiling / 2 * Double.random(in: 0...1)
    }

    /// `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3), relative to `now`.
    public static func parseRetryAfter(_ value: String, now: Int64) -> Duration? {
        let text = value.trimmingSpaces
        if let seconds = Int64(text) { return .seconds(max(0, seconds)) }
        guard let date = HTTPDate.parse(text) else { return nil }
        return .seconds(max(0, date - now))
    }
}
