import AuditShipper
import Testing

@Suite struct RetryPolicyTests {
    @Test func retryAfterInSeconds() {
        #expect(RetryPolicy.parseRetryAfter("120", now: 0) == .seconds(120))
        #expect(RetryPolicy.parseRetryAfter(" 0 ", now: 0) == .zero)
    }

    @Test(arguments: [
        "Sun, 06 Nov 1994 08:49:37 GMT",  // IMF-fixdate
        "Sunday, 06-Nov-94 08:49:37 GMT",  // RFC 850
        "Sun Nov  6 08:49:37 1994",  // asctime
        "SUN, 06 NOV 1994 08:49:37 GMT",  // names are case-insensitive
    ])
    func retryAfterAsAnHTTPDate(value: String) {
        let date: Int64 = 784_111_777
        #expect(RetryPolicy.parseRetryAfter(value, now: date - 30) == .seconds(30))
        #expect(RetryPolicy.parseRetryAfter(value, now: date + 30) == .zero, "a date in the past means now")
    }

    /// A header is the server's: nothing in it may make the date arithmetic overflow.
    @Test(arguments: [
        "soon", "", "Sun, 06 Nov 99999999999999 08:49:37 GMT", "Sun, 06 Nov 1994 99999999999:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:-9223372036854775808 GMT", "Sun, 06 Nov 0 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:4x:49:37 GMT", "Sun, 06 Nov 1994 08:49 GMT", "Sun, 06 1994 08:49:37 GMT",
    ])
    func garbageRetryAfterIsIgnored(_ value: String) {
        #expect(RetryPolicy.parseRetryAfter(value, now: 0) == nil)
    }

    @Test func hugeRetryAfterSecondsAreCappedNotTrapped() {
        #expect(RetryPolicy.parseRetryAfter("9223372036854775807", now: 0) == .seconds(Int64.max))
        #expect(RetryPolicy().delay(afterAttempt: 1, retryAfter: .seconds(Int64.max)) == .seconds(900))
    }

    @Test func backoffGrowsWithJitterAndIsCapped() {
        let policy = RetryPolicy(baseDelay: .seconds(1), maxDelay: .seconds(8))
        for attempt in 1...10 {
            let ceiling = min(Duration.seconds(1 << (attempt - 1)), .seconds(8))
            for _ in 0..<20 {
                let delay = policy.delay(afterAttempt: attempt, retryAfter: nil)
                #expect(delay >= ceiling / 2 && delay <= ceiling)
            }
        }
    }

    @Test func retryAfterIsHonouredButCapped() {
        let policy = RetryPolicy(maxRetryAfter: .seconds(60))
        #expect(policy.delay(afterAttempt: 1, retryAfter: .seconds(5)) == .seconds(5))
        #expect(policy.delay(afterAttempt: 1, retryAfter: .seconds(3600)) == .seconds(60))
    }
}
