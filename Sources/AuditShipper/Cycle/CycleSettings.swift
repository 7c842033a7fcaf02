/// What the cycle needs from `api` and `poll`.
public struct CycleSettings: Sendable, Equatable {
    public var filters: AuditLogFilters
    public var pageSize: Int
    public var includeTenantEvents: TenantEvents
    /// Seconds re-read before `completeBefore` on every cycle, for late-arriving events.
    public var lookback: Int64
    /// At most this many new events are kept at once while catching up.
    public var maxWindowEvents: Int
    /// At most this many bytes of events are kept at once (events of 100 KB reach the byte
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
