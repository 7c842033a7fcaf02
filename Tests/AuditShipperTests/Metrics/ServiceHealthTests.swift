import AuditShipper
import Testing

/// `/readyz`'s answer: started, and the last success within three intervals, or a
/// `Retry-After` wait the API asked for.
@Suite struct ServiceHealthTests {
    @Test func readinessFollowsStartSuccessAndRetryAfterWaits() {
        let heartbeat = Heartbeat()
        let health = ServiceHealth(heartbeat: heartbeat)
        #expect(health.notReadyReason() == "not ready: starting")
        health.started(interval: .seconds(60))
        health.failed("the API returned 503", interval: .seconds(60))
        #expect(health.notReadyReason() == "not ready: no poll has succeeded yet: the API returned 503")
        health.succeeded(interval: .seconds(60))
        #expect(health.notReadyReason() == nil)
        let later = ContinuousClock.now + .seconds(181)
        health.failed("rate limited", interval: .seconds(60))
        #expect(
            health.notReadyReason(now: later)?.hasPrefix("not ready: the last successful poll was 181s ago") == true)
        heartbeat.waiting(until: .now + .seconds(3600))
        #expect(health.notReadyReason(now: later) == nil, "waiting as the API asked is not failing")
        heartbeat.waiting(until: nil)
        #expect(health.notReadyReason(now: later) != nil)
        #expect(health.isAlive)
    }
}
