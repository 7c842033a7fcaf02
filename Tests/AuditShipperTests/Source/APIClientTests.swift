import AsyncHTTPClient
import AuditShipper
import AuditSimulator
import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

/// The HTTP client against the simulator over loopback.
@Suite(.serialized) struct APIClientTests {
    static let key = "sk-admin-simulator-0000000000000000"
    static let fast = RetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(20), maxDelay: .milliseconds(100))

    /// The steps a policy's waits were slept in, none of them in real time.
    final class Pauses: Sendable {
        let steps = Locked<[Duration]>([])
        /// The heartbeat's age at each step: a wait beats it right before sleeping.
        let ages = Locked<[Duration]>([])
        let heartbeat: Heartbeat?

        init(heartbeat: Heartbeat? = nil) { self.heartbeat = heartbeat }

        var total: Duration { steps.withLock { $0.reduce(.zero, +) } }

        func policy(maxAttempts: Int = 4, maxRetryAfterPerCycle: Duration = .seconds(1800)) -> RetryPolicy {
            RetryPolicy(
                maxAttempts: maxAttempts, baseDelay: .milliseconds(20), maxDelay: .milliseconds(100),
                maxRetryAfterPerCycle: maxRetryAfterPerCycle
            ) { [self] step in
                steps.withLock { $0.append(step) }
                if let heartbeat { ages.withLock { $0.append(heartbeat.age) } }
            }
        }
    }

    /// Runs `body` with a started simulator and a client for it; both are stopped after.
    func withClient(
        key: String = key, organization: String? = nil, timeout: Duration = .seconds(5), retry: RetryPolicy = fast,
        heartbeat: Heartbeat? = nil, concurrency: AdaptiveConcurrency? = nil, eventLoop: (any EventLoop)? = nil,
        _ body: (AuditSimulator, APIClient) async throws -> Void
    ) async throws {
        let simulator = AuditSimulator(adminKey: Self.key)
        try await simulator.start()
        let http = APIClient.makeHTTPClient(connectTimeout: .seconds(2))
        let client = APIClient(
            http: http, baseURL: simulator.baseURL, key: AdminKey(key, origin: "test"), organization: organization,
            timeout: timeout, retry: retry, logger: Logger.silent,
            eventLoop: eventLoop, heartbeat: heartbeat, concurrency: concurrency)
        do {
            try await body(simulator, client)
        } catch {
            try? await http.shutdown()
            try? await simulator.stop()
            throw error
        }
        try await http.shutdown()
        try await simulator.stop()
    }

    func statuses(_ simulator: AuditSimulator) -> [Int] { simulator.requests.all.map(\.status) }

    @Test func sendsEveryFilterInItsWireForm() async throws {
        try await withClient(organization: "org-123") { simulator, client in
            var query = AuditLogQuery(
                filters: AuditLogFilters(
                    eventTypes: ["api_key.created", "login.failed"], projectIDs: ["proj_1"], actorIDs: ["user-1"],
                    actorEmails: ["a+b@example.com"], resourceIDs: ["key_1"]))
            query.effectiveAtGreaterThan = 1
            query.effectiveAtGreaterOrEqual = 2
            query.effectiveAtLessThan = 3
            query.effectiveAtLessOrEqual = 4
            query.limit = 7
            query.tenantOnly = true
            _ = try await client.page(query)
            let entry = try #require(simulator.requests.all.last)
            #expect(entry.status == 200)
            #expect(entry.organization == "org-123")
            let expected = [
                "effective_at%5Bgt%5D=1", "effective_at%5Bgte%5D=2", "effective_at%5Blt%5D=3",
                "effective_at%5Blte%5D=4", "event_types%5B%5D=api_key.created", "event_types%5B%5D=login.failed",
                "project_ids%5B%5D=proj_1", "actor_ids%5B%5D=user-1", "actor_emails%5B%5D=a%2Bb%40example.com",
                "resource_ids%5B%5D=key_1", "tenant_only=true", "limit=7",
            ]
            #expect(entry.uri == "/v1/organization/audit_logs?" + expected.joined(separator: "&"))
        }
    }

    @Test func filtersSelectWhatTheSimulatorServes() async throws {
        try await withClient { simulator, client in
            simulator.addEvents(
                count: 30, from: 1_000, to: 2_000, types: ["api_key.created", "login.failed", "user.added"])
            var query = AuditLogQuery(filters: AuditLogFilters(eventTypes: ["login.failed"]))
            query.limit = 100
            let page = try await client.page(query)
            #expect(page.events.count == 10)
            #expect(page.events.allSatisfy { $0.type == "login.failed" })
            query.after = page.events[4].id
            let rest = try await client.page(query)
            #expect(rest.events.map(\.id) == page.events.dropFirst(5).map(\.id))
        }
    }

    @Test func pagesWalkNewestFirstWithAfter() async throws {
        try await withClient { simulator, client in
            simulator.addEvents(count: 25, from: 1_000, to: 1_024, types: ["api_key.created"])
            var query = AuditLogQuery()
            query.limit = 10
            var seen: [AuditEvent] = []
            while true {
                let page = try await client.page(query)
                seen += page.events
                guard page.hasMore, let last = page.lastID else { break }
                query.after = last
            }
            #expect(seen.count == 25)
            #expect(seen.map(\.effectiveAt) == (1_000...1_024).reversed().map(Int64.init))
        }
    }

    /// "http-date, server a day ahead": the server's clock disagrees with ours; its HTTP-date
    /// is read against its own `Date` header (against ours it would be a day's wait).
    @Test(arguments: ["1", "http-date", "http-date, server a day ahead"])
    func rateLimitHonoursRetryAfter(form: String) async throws {
        let pauses = Pauses()
        try await withClient(retry: pauses.policy()) { simulator, client in
            simulator.addEvents(count: 1, from: 1_000, types: ["user.added"])
            let retryAfter: String
            if form.hasPrefix("http-date") {
                let skew: Int64 = form == "http-date" ? 0 : 86_400
                simulator.clockSkew.withLock { $0 = skew }
                let formatter = DateFormatter()
                formatter.locale = Locale(identifier: "en_US_POSIX")
                formatter.timeZone = TimeZone(identifier: "GMT")
                formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
                retryAfter = formatter.string(from: Date().addingTimeInterval(2 + Double(skew)))
            } else {
                retryAfter = form
            }
            simulator.faults.enqueue(.status(429, retryAfter: retryAfter), count: 1)
            let page = try await client.page(AuditLogQuery())
            #expect(page.events.count == 1)
            #expect(statuses(simulator) == [429, 200])
            // The policy alone would retry after 10-20 ms: the wait came from Retry-After (an
            // HTTP-date two seconds ahead is one to two whole seconds from the server's clock).
            let waited = pauses.total
            #expect(waited >= .seconds(1) && waited <= .seconds(2), "waited \(waited)")
            #expect(pauses.steps.withLock { $0.allSatisfy { $0 <= .seconds(1) } })
        }
    }

    /// A `Retry-After` wait feeds the watchdog: it is slept in steps of at most a second with
    /// a beat before each (the heartbeat used to age by the whole wait), and one cycle waits at
    /// most `maxRetryAfterPerCycle` in all before it gives up; the next cycle starts a new
    /// budget. No real second passes: the policy's pause records the steps.
    @Test func retryAfterWaitsBeatTheHeartbeatAndAreCappedPerCycle() async throws {
        let heartbeat = Heartbeat()
        let pauses = Pauses(heartbeat: heartbeat)
        let started = ContinuousClock.now
        try await withClient(retry: pauses.policy(maxRetryAfterPerCycle: .seconds(5)), heartbeat: heartbeat) {
            simulator, client in
            simulator.faults.enqueue(.status(429, retryAfter: "4"))
            client.cycleBegins()
            _ = try await client.page(AuditLogQuery())
            #expect(pauses.steps.withLock { $0 } == Array(repeating: .seconds(1), count: 4))
            // Beaten right before each step: its age there is the time since the beat, not the wait's.
            #expect(
                pauses.ages.withLock { $0.allSatisfy { $0 < .milliseconds(500) } }, "\(pauses.ages.withLock { $0 })")
            // 4 s of the 5 s budget are spent: a 2 s wait does not fit in this cycle.
            simulator.faults.enqueue(.status(429, retryAfter: "2"))
            await #expect {
                try await client.page(AuditLogQuery())
            } throws: { error in
                guard case .retriesExhausted(1, .rateLimited) = error as? UpstreamError else { return false }
                return true
            }
            #expect(pauses.total == .seconds(4), "the refused wait was not slept")
            client.cycleBegins()
            simulator.faults.enqueue(.status(429, retryAfter: "1"))
            _ = try await client.page(AuditLogQuery())
            #expect(pauses.total == .seconds(5))
        }
        #expect(ContinuousClock.now - started < .seconds(4), "no Retry-After was waited in real time")
    }

    /// What the client sees is what the cycle's concurrency learns from: pages that come back
    /// raise it, a 429 halves it, and its Retry-After keeps the next request back too.
    @Test func pagesRaiseTheConcurrencyAndA429HalvesItAndKeepsTheNextRequestBack() async throws {
        let pauses = Pauses()
        let concurrency = AdaptiveConcurrency(maximum: 4)
        try await withClient(retry: pauses.policy(), concurrency: concurrency) { simulator, client in
            // The first page's latency is the floor, so it is no rise whatever the machine's
            // load: one page at one is a run.
            _ = try await client.page(AuditLogQuery())
            #expect(concurrency.limit == 2)
            simulator.faults.enqueue(.status(429, retryAfter: "3"))
            _ = try await client.page(AuditLogQuery())
            #expect(concurrency.limit == 1)
            #expect(pauses.total == .seconds(3), "the request answered 429 waited its Retry-After")
            // Another request (of another slice) waits what is left of it before it is sent.
            let left = try #require(concurrency.retryAfterLeft)
            _ = try await client.page(AuditLogQuery())
            #expect(pauses.total >= .seconds(3) + left - .milliseconds(100))
            #expect(statuses(simulator).suffix(3) == [429, 200, 200])
        }
    }

    /// Slices read at once put several requests in flight on the cycle's event loop: each
    /// goes on a connection kept open, not on one made for it and closed after (the pool's
    /// answer to a request that requires its loop when the pooled connections are busy).
    @Test func requestsInFlightAtOnceReuseTheirConnections() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        try await withClient(eventLoop: loop) { simulator, client in
            simulator.addEvents(count: 50, from: 1_700_000_000, to: 1_700_086_400)
            for _ in 0..<10 {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<4 { group.addTask { _ = try await client.page(AuditLogQuery()) } }
                    try await group.waitForAll()
                }
            }
            #expect(simulator.requests.all.count == 40)
            let connections = simulator.connections.withLock { $0 }
            // Four, or a few more where a round began before the last one's connection was
            // put back; made per request, it was 31.
            #expect(connections <= 8, "\(connections) connections for 40 requests, 4 at a time")
        }
    }

    @Test func rateLimitWithoutRetryAfterBacksOff() async throws {
        try await withClient { simulator, client in
            simulator.faults.enqueue(.status(429, retryAfter: nil), count: 3)
            _ = try await client.page(AuditLogQuery())
            #expect(statuses(simulator) == [429, 429, 429, 200])
        }
    }

    @Test func serverErrorsAreRetriedThenSucceed() async throws {
        try await withClient { simulator, client in
            for status in [500, 502, 503] { simulator.faults.enqueue(.status(status, retryAfter: nil)) }
            _ = try await client.page(AuditLogQuery())
            #expect(statuses(simulator) == [500, 502, 503, 200])
        }
    }

    @Test func aResetConnectionIsRetriedThenSucceeds() async throws {
        try await withClient { simulator, client in
            simulator.addEvents(count: 2, from: 1_000, types: ["user.added"])
            simulator.faults.enqueue(.reset, count: 2)
            let page = try await client.page(AuditLogQuery())
            #expect(page.events.count == 2)
            #expect(statuses(simulator) == [0, 0, 200])
        }
    }

    @Test func aSlowResponseTimesOutAndIsRetried() async throws {
        try await withClient(timeout: .seconds(1)) { simulator, client in
            simulator.faults.enqueue(.slow(milliseconds: 3000))
            _ = try await client.page(AuditLogQuery())
            // Had the client waited the 3 s out, the first answer would have been the page and
            // there would be no second request: two requests show the timeout and the retry.
            // (No wall-clock bound: on a loaded machine the retry's backoff varies.)
            #expect(simulator.requests.all.count == 2)
        }
    }

    /// The kinds the client itself rejects; `empty_has_more` is a lie only the walk can see
    /// (CycleTests, HostileUpstreamTests).
    @Test(arguments: [MalformedKind.truncated, .notJSON, .noData])
    func aMalformedPageIsAnUpstreamErrorAndRetried(kind: MalformedKind) async throws {
        try await withClient { simulator, client in
            simulator.addEvents(count: 3, from: 1_000, types: ["user.added"])
            simulator.faults.enqueue(.malformed(kind), count: 1)
            let page = try await client.page(AuditLogQuery())
            #expect(page.events.count == 3)
            simulator.faults.enqueue(.malformed(kind), count: 10)
            await #expect {
                try await client.page(AuditLogQuery())
            } throws: { error in
                guard case .retriesExhausted(4, .malformedPage) = error as? UpstreamError else { return false }
                return true
            }
        }
    }

    @Test func aCycleOverMalformedPagesMakesNoProgressThenCatchesUp() async throws {
        try await withClient { simulator, client in
            let now = Int64(Date().timeIntervalSince1970)
            simulator.addEvents(count: 250, from: now - 600, to: now - 10, types: ["user.added"])
            let sink = RecordingSink()
            var cycle = PollCycle(
                source: client, sinks: [sink], settings: CycleSettings(pageSize: 100),
                logger: Logger.silent, writer: .nowhere)
            var state = AuditState(
                source: StateSource(baseURL: simulator.baseURL, organization: nil, filters: AuditLogFilters()),
                startAt: now - 3600, now: now)
            // The second page is broken on every attempt: nothing of the slice may be delivered.
            simulator.faults.enqueue(.slow(milliseconds: 1))
            simulator.faults.enqueue(.malformed(.truncated), count: 4)
            await #expect(throws: UpstreamError.self) { try await cycle.run(state: &state, now: now) }
            #expect(sink.events.isEmpty)
            #expect(
                state.positions["recording"]?.delivered ?? 0 == 0
                    && state.positions["recording"]?.recent.isEmpty ?? true)
            _ = try await cycle.run(state: &state, now: now)
            #expect(Set(sink.ids).count == 250 && sink.ids.count == 250)
        }
    }

    @Test func retriesStopAfterTheLastAttempt() async throws {
        try await withClient { simulator, client in
            simulator.faults.enqueue(.status(503, retryAfter: nil), count: 10)
            await #expect {
                try await client.page(AuditLogQuery())
            } throws: { error in
                "\(error)".contains("HTTP 503") && "\(error)".contains("gave up after 4 attempts")
            }
        }
    }

    @Test func aWrongKeyIsRejectedWithTheAPIsMessageAndNotRetried() async throws {
        let wrong = "sk-admin-wrong-key-ABCDEFGHIJKLMNOP"
        try await withClient(key: wrong) { simulator, client in
            await #expect {
                try await client.page(AuditLogQuery())
            } throws: { error in
                guard case .keyRejected(401, let message) = error as? UpstreamError else { return false }
                return message.contains("Incorrect API key provided") && !"\(error)".contains(wrong)
            }
            #expect(simulator.requests.all.count == 1)
        }
    }

    @Test func aProjectKeyIsRejectedForMissingScopes() async throws {
        try await withClient(key: "sk-proj-abcdefghijklmnopqrstuvwxyz") { _, client in
            await #expect {
                try await client.page(AuditLogQuery())
            } throws: { error in
                "\(error)".contains("Missing scopes: api.audit_logs.read")
            }
        }
    }

    @Test func aBadRequestCarriesTheAPIsMessage() async throws {
        try await withClient { simulator, client in
            var query = AuditLogQuery(filters: AuditLogFilters(eventTypes: ["no.such_type"]))
            query.limit = 5
            await #expect {
                try await client.page(query)
            } throws: { error in
                guard case .badRequest(400, let message) = error as? UpstreamError else { return false }
                return message.contains("'no.such_type' is not a known event type")
            }
            query = AuditLogQuery()
            query.limit = 101
            await #expect {
                try await client.page(query)
            } throws: { error in
                "\(error)".contains("Expected a value between 1 and 100")
            }
            #expect(simulator.requests.all.count == 2, "a 400 is not retried")
        }
    }

    @Test func anUnreachableAPIIsATransportError() async throws {
        let http = APIClient.makeHTTPClient(connectTimeout: .seconds(1))
        defer { _ = Task { try? await http.shutdown() } }
        let client = APIClient(
            http: http, baseURL: "http://127.0.0.1:1/v1", key: AdminKey(Self.key, origin: "test"), organization: nil,
            timeout: .seconds(2), retry: RetryPolicy(maxAttempts: 2, baseDelay: .milliseconds(10)),
            logger: Logger.silent)
        await #expect {
            try await client.page(AuditLogQuery())
        } throws: { error in
            guard case .retriesExhausted(2, .transport) = error as? UpstreamError else { return false }
            return true
        }
        try await http.shutdown()
    }
}
