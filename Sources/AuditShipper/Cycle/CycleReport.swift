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
    /// Slices walked and delivered (one that overflowed is narrowed and walked again).
    public var slices = 0
    public var pages = 0
    /// The most events, and the most bytes of them, the cycle kept at once: a slice's, or a
    /// part of one second's. What bounds its memory: within `poll.max_window_events` and
    /// `poll.max_window_bytes` (a part: plus the page that took it past them).
    public var mostKept = 0
    public var mostKeptBytes = 0
    /// The newest `effective_at` delivered in this cycle.
    public var newestDelivered: Int64?
    /// Sinks that failed in this cycle (name → why); their positions did not move.
    public var sinkFailures: [String: String] = [:]
    /// The cycle left work to one that should start at once, not at the next tick: it took
    /// the group's lease between slices, or began a term with the shared sinks alone while
    /// the local ones were further behind (`PollCycle.prepare`).
    public var again = false

    public init() {}

    /// `later`, a cycle that followed this one at once (`again`), added to it: one report
    /// for both.
    public mutating func add(_ later: CycleReport) {
        delivered += later.delivered
        duplicatesDropped += later.duplicatesDropped
        lateEvents += later.lateEvents
        setAside += later.setAside
        slices += later.slices
        pages += later.pages
        kept(events: later.mostKept, bytes: later.mostKeptBytes)
        if let newest = later.newestDelivered { newestDelivered = max(newestDelivered ?? newest, newest) }
        // The later cycle checked every sink again: its failures are the ones that stand.
        sinkFailures = later.sinkFailures
        again = later.again
    }

    /// A slice was walked to its end holding `events` of `bytes`.
    mutating func sliceWalked(events: Int, bytes: Int) {
        slices += 1
        kept(events: events, bytes: bytes)
    }

    /// `events` of `bytes` were kept at once, to be delivered.
    mutating func kept(events: Int, bytes: Int) {
        mostKept = max(mostKept, events)
        mostKeptBytes = max(mostKeptBytes, bytes)
    }
}
