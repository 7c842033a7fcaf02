import Synchronization

/// How many requests the API is given at once while a cycle catches up (`api.max_concurrency`),
/// learnt from its answers, in the shape of Vector's adaptive request concurrency: the API's
/// rate limit is unpublished, and only a 429 tells where it is.
///
/// - It starts at one. After a run of pages (as many as the limit) answered without their
///   latency rising (by half, and 25 ms, over the least seen lately), it grows by one, never
///   past `maximum`.
/// - A 429 or a timeout halves it (rounded up, at least one), once per round trip: answers to
///   requests sent before the last cut were sent at the level already cut, and do not cut it
///   again (several slices told 429 at once halve it once, not once each). The level that
///   was pushed back is remembered as a ceiling: below it the limit grows after `limit` pages,
///   as at first; to reach it again takes `probeRun` pages. A server that refuses a third
///   request in flight then sees a third about once in that many, not at every other page,
///   and is given two in between.
/// - A `Retry-After` keeps every request back until it passes (`retryAfterLeft`), not only
///   the one that was answered with it.
/// - Every request holds a permit while it is in flight (`acquire`, `release`), so never more
///   than `limit` are at the API, whatever was started before a cut: a slice read ahead whose
///   next page has no permit waits for one instead of being told 429.
///
/// The API client reports what it sees (`succeeded`, `pushedBack`) and takes a permit for
/// each request; the cycle reads `limit` for how many probes to send at once, and reads up to
/// `maximum` slices at once (`PollCycle.readAhead`), their pages taking turns for the permits.
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
        /// When the limit was last cut: a push-back for a request sent before then is not
        /// another one.
        var cutAt: ContinuousClock.Instant?
        /// Requests holding a permit.
        var inFlight = 0
        /// Requests waiting for one, first come first served.
        var waiting: [(id: UInt64, continuation: CheckedContinuation<ContinuousClock.Instant, any Error>)] = []
        var nextWaiter: UInt64 = 0
        /// Waiters between `acquire`'s start and their turn in `waiting` (or a permit), and
        /// those of them cancelled meanwhile.
        var arriving: Set<UInt64> = []
        var cancelled: Set<UInt64> = []

        /// The waiters a permit is free for now, counted in.
        mutating func admit() -> [CheckedContinuation<ContinuousClock.Instant, any Error>] {
            var admitted: [CheckedContinuation<ContinuousClock.Instant, any Error>] = []
            while inFlight < limit, !waiting.isEmpty {
                inFlight += 1
                admitted.append(waiting.removeFirst().continuation)
            }
            return admitted
        }
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

    /// Requests waiting for a permit.
    var waiters: Int { state.withLock { $0.waiting.count } }

    /// A page came back whole after `latency`.
    public func succeeded(after latency: Duration) {
        let seconds = Double(latency.components.seconds) + Double(latency.components.attoseconds) * 1e-18
        let grown = state.withLock {
            state -> (limit: Int, admitted: [CheckedContinuation<ContinuousClock.Instant, any Error>])? in
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
            // The permit the new level frees goes to the first waiter, under the same lock.
            return (next, state.admit())
        }
        if let grown {
            metrics?.apiConcurrency.set(Double(grown.limit))
            let now = ContinuousClock.now
            for waiter in grown.admitted { waiter.resume(returning: now) }
        }
    }

    /// The API answered 429, or a request timed out, that request sent at `sentAt` (nil: now):
    /// half as many from now on, unless it was sent before the last cut. With `retryAfter`,
    /// no request is sent before it passes.
    public func pushedBack(sentAt: ContinuousClock.Instant? = nil, retryAfter: Duration? = nil) {
        let limit = state.withLock { state -> Int in
            let now = ContinuousClock.now
            if state.cutAt.map({ (sentAt ?? now) >= $0 }) ?? true {
                state.ceiling = min(state.ceiling ?? state.limit, state.limit)
                state.limit = max(1, (state.limit + 1) / 2)
                state.cutAt = now
            }
            state.run = 0
            if let retryAfter {
                let until = now + retryAfter
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

    /// Waits until fewer than `limit` requests hold a permit and takes one; returns when it
    /// was given (a push-back for a request sent before a cut does not cut again).
    /// Whoever takes one `release`s it when the request's answer is in. Throws only when the
    /// task is cancelled while it waits.
    public func acquire() async throws -> ContinuousClock.Instant {
        let id = state.withLock { state in
            state.nextWaiter += 1
            state.arriving.insert(state.nextWaiter)
            return state.nextWaiter
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation {
                (continuation: CheckedContinuation<ContinuousClock.Instant, any Error>) in
                let now = state.withLock { state -> Bool? in
                    state.arriving.remove(id)
                    if state.cancelled.remove(id) != nil { return false }
                    if state.inFlight < state.limit, state.waiting.isEmpty {
                        state.inFlight += 1
                        return true
                    }
                    state.waiting.append((id, continuation))
                    return nil
                }
                switch now {
                case true: continuation.resume(returning: .now)
                case false: continuation.resume(throwing: CancellationError())
                default: break
                }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<ContinuousClock.Instant, any Error>? in
                guard let index = state.waiting.firstIndex(where: { $0.id == id }) else {
                    // Not queued yet: it sees this when it comes; or it holds a permit already.
                    if state.arriving.contains(id) { state.cancelled.insert(id) }
                    return nil
                }
                return state.waiting.remove(at: index).continuation
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// A request `acquire`d a permit for is answered (or failed): the permit is free.
    public func release() {
        let now = ContinuousClock.now
        let admitted = state.withLock { state in
            state.inFlight -= 1
            return state.admit()
        }
        for waiter in admitted { waiter.resume(returning: now) }
    }
}
