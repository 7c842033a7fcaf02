import Synchronization

/// How many requests the API is given at once while a cycle catches up (`api.max_concurrency`),
/// learnt from its answers, in the shape of Vector's adaptive request concurrency: the API's
/// rate limit is unpublished, and only a 429 tells where it is.
///
/// - It starts at one. After a run of pages (as many as the limit) answered without their
///   latency rising (by half, and 25 ms, over the least seen lately), it grows by one, never
///   past `maximum`.
/// - A 429 or a timeout halves it (at least one), and the level that was pushed back is
///   remembered as a ceiling: below it the limit grows after `limit` pages, as at first; to
///   reach it again takes `probeRun` pages. A server that refuses a third request in
///   flight then sees a third about once in that many, not at every other page.
/// - A `Retry-After` keeps every request back until it passes (`retryAfterLeft`), not only
///   the one that was answered with it.
///
/// The API client reports what it sees (`succeeded`, `pushedBack`); the cycle reads `limit`
/// when it decides how many slices to read at once (`PollCycle.readAhead`).
public final class AdaptiveConcurrency: Sendable {
    public let maximum: Int
    /// Pages without a rise that take the limit to a level that was pushed back before.
    static let probeRun = 50
    /// A latency over the floor by this factor, and by `jitter` seconds, is a rise (on
    /// loopback or a LAN pages take a millisecond or two, and twice that is noise).
    static let rise = 1.5
    static let jitter = 0.025

    struct State {
        var limit = 1
        /// Pages answered without a rise since the limit last changed.
        var run = 0
        /// The latency pages take when the server is not queueing them, seconds: the least
        /// seen, rising by 1 % a page.
        var floor: Double?
        /// The lowest level a 429 or a timeout pushed back; nil: none yet.
        var ceiling: Int?
        var retryAfterUntil: ContinuousClock.Instant?
    }

    let state: Mutex<State>
    let metrics: DaemonMetrics?

    public init(maximum: Int, metrics: DaemonMetrics? = nil) {
        self.maximum = max(1, maximum)
        self.metrics = metrics
        state = Mutex(State())
        metrics?.apiConcurrency.set(1.0)
    }

    /// How many requests may be in flight now.
    public var limit: Int { state.withLock { $0.limit } }

    /// A page came back whole after `latency`.
    public func succeeded(after latency: Duration) {
        let seconds = Double(latency.components.seconds) + Double(latency.components.attoseconds) * 1e-18
        let changed = state.withLock { state -> Int? in
            let floor = state.floor ?? seconds
            // The floor follows a faster page at once and a slower server over some seventy
            // pages: a latency our own requests raised is not taken for the new normal.
            state.floor = min(seconds, floor * 1.01)
            guard seconds <= floor * Self.rise + Self.jitter else {
                state.run = 0
                return nil
            }
            state.run += 1
            guard state.limit < maximum else { return nil }
            let next = state.limit + 1
            let needed = state.ceiling.map { next >= $0 } == true ? Self.probeRun : state.limit
            guard state.run >= needed else { return nil }
            state.limit = next
            state.run = 0
            return next
        }
        if let changed { metrics?.apiConcurrency.set(Double(changed)) }
    }

    /// The API answered 429, or a request timed out: half as many from now on. With
    /// `retryAfter`, no request is sent before it passes.
    public func pushedBack(retryAfter: Duration? = nil) {
        let limit = state.withLock { state -> Int in
            state.ceiling = min(state.ceiling ?? state.limit, state.limit)
            state.limit = max(1, state.limit / 2)
            state.run = 0
            if let retryAfter {
                let until = ContinuousClock.now + retryAfter
                state.retryAfterUntil = max(state.retryAfterUntil ?? until, until)
            }
            return state.limit
        }
        metrics?.apiConcurrency.set(Double(limit))
    }

    /// How long a `Retry-After` still keeps requests back; nil when none does.
    public var retryAfterLeft: Duration? {
        state.withLock { state in
            guard let until = state.retryAfterUntil else { return nil }
            let left = until - ContinuousClock.now
            if left <= .zero {
                state.retryAfterUntil = nil
                return nil
            }
            return left
        }
    }
}
