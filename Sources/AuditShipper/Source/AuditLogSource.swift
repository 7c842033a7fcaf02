/// Where pages come from: the HTTP client in production, a canned source in tests.
public protocol AuditLogSource: Sendable {
    /// One page, after the source's own retries; throws `UpstreamError` or `CancellationError`.
    func page(_ query: AuditLogQuery) async throws -> AuditPage
    /// A cycle begins: per-cycle limits (the `Retry-After` budget) start over.
    func cycleBegins()
}

extension AuditLogSource {
    public func cycleBegins() {}
}
