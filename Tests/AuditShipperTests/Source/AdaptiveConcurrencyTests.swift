import AuditShipper
import Testing

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
        Self.pages(concurrency, 1 + 2)
        #expect(concurrency.limit == 3)
        concurrency.pushedBack()
        #expect(concurrency.limit == 1)
        Self.pages(concurrency, 1)
        #expect(concurrency.limit == 2, "below the level that was pushed back: as quick as at first")
        Self.pages(concurrency, Self.probeRun - 1)
        #expect(concurrency.limit == 2, "three was pushed back: it is tried again only after a long run")
        Self.pages(concurrency, 1)
        #expect(concurrency.limit == 3)
        concurrency.pushedBack()
        concurrency.pushedBack()
        #expect(concurrency.limit == 1, "at least one")
    }

    static let probeRun = 50

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
