import Logging

/// One poll cycle: read the window, drop what was delivered, deliver the rest oldest first,
/// and move the state after every batch. The only effects are the injected source, sinks
/// and `persist`, so tests drive it with pages in and deliveries and states out.
public struct PollCycle: Sendable {
    public let source: any AuditLogSource
    public let sinks: [any Sink]
    public var settings: CycleSettings
    public let persist: @Sendable (AuditState) throws -> Void
    let logger: Logger
    /// Beaten at every page and batch, for the watchdog.
    let heartbeat: Heartbeat?
    /// Seconds per catch-up slice: halved when a slice overflows, doubled while slices are
    /// small, kept from one cycle to the next.
    public private(set) var sliceWidth: Int64
    static let maxSliceWidth: Int64 = 366 * 86_400

    public init(
        source: any AuditLogSource, sinks: [any Sink], settings: CycleSettings, logger: Logger,
        initialSliceWidth: Int64 = 3600, heartbeat: Heartbeat? = nil,
        persist: @escaping @Sendable (AuditState) throws -> Void
    ) {
        self.heartbeat = heartbeat
        self.source = source
        self.sinks = sinks
        self.settings = settings
        self.persist = persist
        self.logger = logger
        self.sliceWidth = max(1, initialSliceWidth)
    }

    /// Runs one cycle from `state` at wall-clock `now` (Unix seconds). On return or throw,
    /// `state` holds everything delivered. It is persisted after every delivered batch and at
    /// the end of the cycle; in between, the file may lag only by slices that were empty,
    /// which a restart merely re-reads. Catch-up slices follow one another without waiting.
    /// Cancellation stops it between pages or batches; the batch in flight is finished first.
    /// With `until` (replay), the window ends there instead of being open-ended.
    public mutating func run(state: inout AuditState, now: Int64, until: Int64? = nil) async throws -> CycleReport {
        var report = CycleReport()
        var unsaved = false
        var start = state.windowStart(lookback: settings.lookback)
        while true {
            try Task.checkCancellation()
            // A slice that ends in the past is bounded with effective_at[lt]; the last one is
            // open-ended so that events stamped after our clock's "now" are not skipped.
            if let until, start >= until { break }
            let end: Int64? =
                if let until { min(start + sliceWidth, until) } else {
                    start + sliceWidth < now ? start + sliceWidth : nil
                }
            // One second is never cut: if it alone overflows, it is read whole.
            let singleSecond = (end ?? now) - start <= 1
            let cap = singleSecond ? nil : settings.maxWindowEvents
            guard let walk = try await self.walk(from: start, before: end, cap: cap, state: state, report: &report)
            else {
                let width = max(1, (end ?? now) - start)
                sliceWidth = max(1, width / 2)
                logger.debug(
                    "slice overflowed, halving",
                    metadata: ["slice.start": "\(start)", "slice.width": "\(width)", "slice.cap": "\(cap ?? 0)"])
                continue
            }
            report.slices += 1
            try await deliver(walk.events, state: &state, unsaved: &unsaved, report: &report, now: now) {
                next in
                // The slice is complete: everything visible before its end is delivered. The
                // open window moves T only to the newest event seen, never to "now", so a
                // clock ahead of the API's cannot skip events.
                let newT = end ?? walk.newestSeen ?? next.completeBefore
                next.completeBefore = max(next.completeBefore, newT)
            }
            guard let end, end < until ?? .max else { break }
            if walk.events.count < settings.maxWindowEvents / 4 {
                sliceWidth = min(sliceWidth * 2, Self.maxSliceWidth)
            }
            start = end
        }
        if unsaved { try persist(state) }
        return report
    }

    struct Walk {
        var events: [AuditEvent]
        var newestSeen: Int64?
    }

    /// Visits every item of `[start, end)` with `after=<last_id>` until `has_more` is false,
    /// whatever order the server uses; nil when more than `cap` new events turn up.
    func walk(
        from start: Int64, before end: Int64?, cap: Int?, state: AuditState, report: inout CycleReport
    ) async throws -> Walk? {
        var held: [AuditEvent] = []
        var seen = Set<String>()
        var newestSeen: Int64?
        // Nothing newer than the newest id in `recent` can be in it: skip the lookup.
        let newestRecent = state.recent.values.max() ?? .min
        for tenantOnly in settings.includeTenantEvents ? [false, true] : [false] {
            var query = AuditLogQuery(filters: settings.filters)
            query.effectiveAtGreaterOrEqual = start
            query.effectiveAtLessThan = end
            query.limit = settings.pageSize
            query.tenantOnly = tenantOnly
            while true {
                try Task.checkCancellation()
                let page = try await source.page(query)
                heartbeat?.beat()
                report.pages += 1
                for event in page.events {
                    newestSeen = max(newestSeen ?? event.effectiveAt, event.effectiveAt)
                    guard seen.insert(event.id).inserted,
                        event.effectiveAt > newestRecent || state.recent[event.id] == nil
                    else {
                        report.duplicatesDropped += 1
                        continue
                    }
                    held.append(event)
                    if let cap, held.count > cap { return nil }
                }
                guard page.hasMore, let last = page.lastID ?? page.events.last?.id else { break }
                guard last != query.after else {
                    throw UpstreamError.malformedPage(
                        MalformedPage(reason: "has_more is true but the page did not move past \(last)", offset: 0))
                }
                query.after = last
            }
        }
        // Oldest first; within one second, the reverse of the API's (newest-first) order.
        let ordered = held.enumerated().sorted {
            $0.element.effectiveAt != $1.element.effectiveAt
                ? $0.element.effectiveAt < $1.element.effectiveAt : $0.offset > $1.offset
        }
        return Walk(events: ordered.map(\.element), newestSeen: newestSeen)
    }

    /// Hands `events` to every sink in batches; after each batch every sink accepted, the
    /// state is written. `complete` finishes the state with the last batch (or alone).
    func deliver(
        _ events: [AuditEvent], state: inout AuditState, unsaved: inout Bool, report: inout CycleReport,
        now: Int64, complete: (inout AuditState) -> Void
    ) async throws {
        var offset = 0
        repeat {
            let batch = Array(events[offset..<min(offset + settings.batchSize, events.count)])
            offset += batch.count
            if !batch.isEmpty {
                // Nothing lost: the state moves only after every sink accepted the batch. A
                // sink that throws leaves it where it was, and the next cycle re-reads.
                for sink in sinks { try await sink.deliver(batch) }
                heartbeat?.beat()
            }
            var next = state
            for event in batch {
                next.recent[event.id] = event.effectiveAt
                if event.effectiveAt < state.completeBefore { report.lateEvents += 1 }
            }
            if let newest = batch.last?.effectiveAt {
                // Every event of the walk older than this batch's newest second is delivered
                // (they come oldest first), so T may move that far now: a restart then
                // re-reads less, and `recent` stays within one lookback instead of a slice.
                next.completeBefore = max(next.completeBefore, newest)
                report.newestDelivered = max(report.newestDelivered ?? newest, newest)
            }
            next.delivered += Int64(batch.count)
            report.delivered += batch.count
            if offset == events.count { complete(&next) }
            if !batch.isEmpty || next.completeBefore != state.completeBefore {
                next.pruneRecent(lookback: settings.lookback)
                next.updatedAt = now
                // In memory first: the batch *was* delivered. If the write fails the error is
                // fatal to the caller, and a restart re-sends at most this batch.
                state = next
                if batch.isEmpty {
                    unsaved = true
                } else {
                    try persist(next)
                    unsaved = false
                }
            }
            if offset < events.count, Task.isCancelled { throw CancellationError() }
        } while offset < events.count
    }
}
