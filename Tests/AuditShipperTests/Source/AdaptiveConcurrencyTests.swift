import Testing

@testable import AuditShipper

/// The concurrency's rule alone: it grows by one after a run of pages whose latency did not
/// rise, halves on a 429 or a timeout, and probes a level that was pushed back rarely.
@Suite struct AdaptiveConcurrencyTests {
    static let page = Duration.milliseconds(100)

    /// `count` pages answered in `latency`.
    static func pages(_ concurrency: AdaptiveConcurrency, _ count: Int, latency: Duration = page) {
        for _ in 0..<count { concurrency.succeeded(after: latency) }
    }

    @Test func itStartsAtOneAndGrowsByOneAfterARunUpToTheMaximum() {
        let concurrency = AdaptiveConcurrency(maximum: 4)
        #expect(concurrency.limit == 1)
        Self.pages(concurrency, 1)
        #expect(concurrency.limit == 2, "after one page at one")
        Self.pages(concurrency, 1)
        #expect(concurrency.limit == 2, "a run as long as the limit")
        Self.pages(concurrency, 1)
        #expect(concurrency.limit == 3)
        Self.pages(concurrency, 3)
        #expect(concurrency.limit == 4)
        Self.pages(concurrency, 100)
        #expect(concurrency.limit == 4, "never past the maximum")
        #expect(AdaptiveConcurrency(maximum: 1).limit == 1)
    }

    @Test func aRisingLatencyHoldsItWhereItIs() {
        let concurrency = AdaptiveConcurrency(maximum: 4)
        Self.pages(concurrency, 3)
        #expect(concurrency.limit == 3)
        // Three times the average: the server is queueing, more requests would not help.
        Self.pages(concurrency, 20, latency: .milliseconds(300))
        #expect(concurrency.limit == 3)
    }

    @Test func aPushBackHalvesItAndTheLevelPushedBackIsProbedOnlyAfterALongRun() {
        let concurrency = AdaptiveConcurrency(maximum: 8)
        Self.pages(concurrency, 1 + 2 + 3)
        #expect(concurrency.limit == 4)
        concurrency.pushedBack()
        #expect(concurrency.limit == 2)
        Self.pages(concurrency, 2)
        #expect(concurrency.limit == 3, "below the level that was pushed back: as quick as at first")
        Self.pages(concurrency, Self.probeRun - 1)
        #expect(concurrency.limit == 3, "four was pushed back: it is tried again only after a long run")
        Self.pages(concurrency, 1)
        #expect(concurrency.limit == 4)
        concurrency.pushedBack()
        #expect(concurrency.limit == 2)
        concurrency.pushedBack()
        #expect(concurrency.limit == 1)
        concurrency.pushedBack()
        #expect(concurrency.limit == 1, "at least one")
        let three = AdaptiveConcurrency(maximum: 8)
        Self.pages(three, 1 + 2)
        three.pushedBack()
        #expect(three.limit == 2, "rounded up: a server that takes two is given two")
    }

    /// Several slices told 429 at once were sent at the level of before: the first answer
    /// cuts it, the others (sent before that cut) do not cut it again.
    @Test func pushBacksForRequestsSentBeforeTheLastCutHalveItOnce() {
        let concurrency = AdaptiveConcurrency(maximum: 8)
        Self.pages(concurrency, 1 + 2 + 3 + 4 + 5 + 6 + 7)
        #expect(concurrency.limit == 8)
        let sent = ContinuousClock.now
        for _ in 0..<4 { concurrency.pushedBack(sentAt: sent) }
        #expect(concurrency.limit == 4, "once for the round trip")
        concurrency.pushedBack(sentAt: .now)
        #expect(concurrency.limit == 2, "a request sent after the cut was told 429 at the level cut to")
    }

    static let probeRun = 50

    /// Until `count` requests wait for a permit.
    static func waiting(_ concurrency: AdaptiveConcurrency, _ count: Int) async throws {
        while concurrency.waiters < count { try await Task.sleep(for: .milliseconds(1)) }
    }

    /// Never more than `limit` permits out: a request past it waits for one to come back (or
    /// for the limit to grow), first come first served; a waiter cancelled leaves no permit
    /// taken.
    @Test func permitsKeepTheRequestsInFlightWithinTheLimit() async throws {
        let concurrency = AdaptiveConcurrency(maximum: 4)
        Self.pages(concurrency, 1)
        #expect(concurrency.limit == 2)
        _ = try await concurrency.acquire()
        _ = try await concurrency.acquire()
        let order = Locked<[Int]>([])
        let third = Task {
            _ = try await concurrency.acquire()
            order.withLock { $0.append(3) }
        }
        try await Self.waiting(concurrency, 1)
        let fourth = Task {
            _ = try await concurrency.acquire()
            order.withLock { $0.append(4) }
        }
        try await Self.waiting(concurrency, 2)
        #expect(order.withLock { $0 }.isEmpty, "two out of two: the others wait")
        concurrency.release()
        try await third.value
        #expect(order.withLock { $0 } == [3], "the first to wait is the first let in")
        // A page that grows the limit lets the next waiter in.
        Self.pages(concurrency, 2)
        #expect(concurrency.limit == 3)
        try await fourth.value
        #expect(order.withLock { $0 } == [3, 4])

        let cancelled = Task { _ = try await concurrency.acquire() }
        try await Self.waiting(concurrency, 1)
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        concurrency.release()
        // Three out, one given back: one is free, and only one (the cancelled waiter took none).
        _ = try await concurrency.acquire()
        let blocked = Task { _ = try await concurrency.acquire() }
        try await Self.waiting(concurrency, 1)
        blocked.cancel()
        await #expect(throws: CancellationError.self) { try await blocked.value }
    }

    @Test func aRetryAfterKeepsEveryRequestBackUntilItPasses() {
        let concurrency = AdaptiveConcurrency(maximum: 4)
        #expect(concurrency.retryAfterLeft == nil)
        concurrency.pushedBack(retryAfter: .seconds(30))
        let held = concurrency.retryAfterLeft
        #expect(held.map { $0 > .seconds(29) && $0 <= .seconds(30) } == true, "\(String(describing: held))")
        concurrency.pushedBack(retryAfter: .seconds(1))
        #expect(concurrency.retryAfterLeft.map { $0 > .seconds(29) } == true, "a shorter one does not shorten the wait")
        let passed = AdaptiveConcurrency(maximum: 4)
        passed.pushedBack(retryAfter: .zero)
        #expect(passed.retryAfterLeft == nil)
    }
}
