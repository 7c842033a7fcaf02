import Logging

/// How an HTTP sink waits before trying a request again: `RetryPolicy`'s delay (the server's
/// `Retry-After` where it gives one, read against its own clock), at most a minute, beating
/// the heartbeat each second of it, and a warning that names the sink and why.
struct HTTPSinkRetry: Sendable {
    let sink: String
    let policy: RetryPolicy
    let heartbeat: Heartbeat?
    let logger: Logger
    /// Attempts at one request before the batch fails.
    static let attempts = 5

    func pause(
        _ attempt: Int, after response: HTTPSinkClient.Response? = nil, _ message: String, _ reason: String
    ) async throws {
        let serverNow = response?.headers.first(name: "Date").flatMap(HTTPDate.parse) ?? Daemon.now()
        let retryAfter = response?.headers.first(name: "Retry-After").flatMap {
            RetryPolicy.parseRetryAfter($0, now: serverNow)
        }
        let wait = min(policy.delay(afterAttempt: attempt, retryAfter: retryAfter), .seconds(60))
        logger.warning(
            "\(message), retrying",
            metadata: [
                "sink": "\(sink)", "error": "\(reason)", "sink.attempt": "\(attempt)", "sink.retry_in": "\(wait)",
            ])
        try await policy.sleep(wait, beating: heartbeat)
    }

    /// `events` cut into requests of at most `maxBytes` by `size` (one event at least each).
    static func requests(
        _ events: ArraySlice<AuditEvent>, maxBytes: Int, size: (AuditEvent) -> Int
    ) -> [ArraySlice<AuditEvent>] {
        var requests: [ArraySlice<AuditEvent>] = []
        var start = events.startIndex
        var bytes = 0
        for index in events.indices {
            let next = size(events[index])
            if index > start, bytes + next > maxBytes {
                requests.append(events[start..<index])
                start = index
                bytes = 0
            }
            bytes += next
        }
        if start < events.endIndex { requests.append(events[start...]) }
        return requests
    }
}
