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
