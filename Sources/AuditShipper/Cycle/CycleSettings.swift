/// `api.include_tenant_events`: whether every window is walked a second time with
/// `tenant_only=true`, which OpenAI's reference says tenant-scoped events (`tenant.*`: SSO,
/// SCIM, admin keys, roles; `role.bound_to_resource`, ...) require.
public enum TenantEvents: String, Sendable, Equatable, CaseIterable {
    /// Walk it; if the API rejects `tenant_only`, say so once and stop until a restart or reload.
    case auto
    /// Walk it; a rejection is an error like any other.
    case on = "true"
    case off = "false"
}

/// What the cycle needs from `api` and `poll`.
public struct CycleSettings: Sendable, Equatable {
    public var filters: AuditLogFilters
    public var pageSize: Int
    public var includeTenantEvents: TenantEvents
    /// Seconds re-read before `completeBefore` on every cycle, for late-arriving events.
    public var lookback: Int64
    /// At most this many new events are held at once while catching up.
    public var maxWindowEvents: Int
    /// At most this many bytes of events are held at once (events of 100 KB reach the byte
    /// bound long before the event bound).
    public var maxWindowBytes: Int
    /// Events handed to the sinks at once; the state is written after each batch.
    public var batchSize: Int
    /// A batch holds at most this many bytes of events, or one event if that alone is more:
    /// what a crash can leave unrecorded stays far inside what a file sink reads back.
    public var maxBatchBytes: Int

    public init(
        filters: AuditLogFilters = AuditLogFilters(), pageSize: Int = 100, includeTenantEvents: TenantEvents = .auto,
        lookback: Int64 = 600, maxWindowEvents: Int = 10_000, maxWindowBytes: Int = 256 << 20, batchSize: Int = 1000,
        maxBatchBytes: Int = 16 << 20
    ) {
        self.maxWindowBytes = maxWindowBytes
        self.maxBatchBytes = maxBatchBytes
        self.filters = filters
        self.pageSize = pageSize
        self.includeTenantEvents = includeTenantEvents
        self.lookback = lookback
        self.maxWindowEvents = maxWindowEvents
        self.batchSize = batchSize
    }
}

/// What one cycle did, for logs, `STATUS=` and metrics.
public struct CycleReport: Sendable, Equatable {
    /// Events delivered to at least one sink.
    public var delivered = 0
    /// Ids dropped because they were delivered before (lookback re-reads) or met twice in a walk.
    public var duplicatesDropped = 0
    /// Events delivered although older than `completeBefore` at the time: they arrived late.
    public var lateEvents = 0
    /// Items of a page that were no readable event, set aside in the dead-letter file (each once).
    public var setAside = 0
    public var slices = 0
    public var pages = 0
    /// The newest `effective_at` delivered in this cycle.
    public var newestDelivered: Int64?
    /// Sinks that failed in this cycle (name → why); their positions did not move.
    public var sinkFailures: [String: String] = [:]

    public init() {}
}
