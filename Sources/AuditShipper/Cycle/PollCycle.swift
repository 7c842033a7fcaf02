import Logging
import Prometheus

/// One poll cycle: read the window once, from the oldest sink position; give each sink the
/// events it does not hold, oldest first, in batches; move each sink's position after every
/// batch it accepted. The only effects are the injected source, sinks and `writer`, so tests
/// drive it with pages in and deliveries and states out.
public struct PollCycle: Sendable {
    public let source: any AuditLogSource
    public let sinks: [any Sink]
    /// Where a sink new to the state starts, by name, when its configuration says so.
    public let sinkStarts: [String: Int64]
    /// Sinks known by a default name that carries their URL or path (`Configuration.defaultNamedKinds`).
    public let sinkKinds: [String: String]
    public var settings: CycleSettings
    /// Where the state goes after each batch: the state file (`StateStore.save`), nowhere
    /// (`replay`), or a recorder in tests.
    public let writer: StateWriter
    /// Where the items of a page that are no readable event are set aside.
    public let deadLetters: DeadLetterFile
    /// The group's lease and shared positions (`coordination:`); nil: this host alone.
    public let coordination: (any Coordination)?
    /// The sinks only the lease's holder delivers to (`SinkEntry.isShared`), whose positions
    /// the group keeps; empty without coordination.
    public let shared: Set<String>
    /// The detection rules that mark events before they are delivered; nil: none.
    public let detector: Detector?
    /// Sinks given only events the rules raised to at least this level (`min_level`), by name.
    public let minLevels: [String: SigmaLevel]
    /// A write of the shared positions failed while this member led: the next cycle it leads
    /// writes them before it delivers (kept from one cycle to the next).
    var sharedBehind = false
    let logger: Logger
    /// Beaten at every page and batch, for the watchdog.
    let heartbeat: Heartbeat?
    let metrics: DaemonMetrics?
    /// How wide the next slice is, learnt from the slices read (kept from one cycle to the next).
    var planner: SlicePlanner
    /// How many requests the API is given at once while catching up (its permits, and the
    /// probes `firstData` sends together); up to its `maximum` slices are read at once
    /// (`readAhead`). Nil: one at a time.
    public let concurrency: AdaptiveConcurrency?
    /// Where slices read ahead are walked: the executor the cycle itself runs on (`CycleRunner`
    /// sets it), so their pages are read on the connection's event loop as the cycle's own
    /// are, without a hop to the global pool and back at every page. Nil: the global pool.
    var executor: (any TaskExecutor)?
    /// Seconds per catch-up slice, as the planner has it now.
    public var sliceWidth: Int64 { planner.width }
    /// How far ahead of the server's clock an event may be stamped before it is called odd.
    static let oddGrace: Int64 = 60
    /// The API rejected `tenant_only` under `include_tenant_events: auto`: the tenant pass is
    /// skipped until a restart or reload (which builds a new cycle).
    public var tenantPassRejected: Bool { tenantPassRefusal.refused }
    let tenantPassRefusal = TenantPassRefusal()

    public init(
        source: any AuditLogSource, sinks: [any Sink], sinkStarts: [String: Int64] = [:],
        sinkKinds: [String: String] = [:], settings: CycleSettings,
        logger: Logger, initialSliceWidth: Int64 = 3600, heartbeat: Heartbeat? = nil, metrics: DaemonMetrics? = nil,
        deadLetters: DeadLetterFile = DeadLetterFile(path: nil),
        coordination: (any Coordination)? = nil, shared: Set<String> = [], detector: Detector? = nil,
        minLevels: [String: SigmaLevel] = [:], concurrency: AdaptiveConcurrency? = nil, writer: StateWriter
    ) {
        self.concurrency = concurrency
        self.detector = detector
        self.minLevels = minLevels
        self.deadLetters = deadLetters
        self.coordination = coordination
        self.shared = coordination == nil ? [] : shared
        self.heartbeat = heartbeat
        self.metrics = metrics
        self.source = source
        self.sinks = sinks
        self.sinkStarts = sinkStarts
        self.sinkKinds = sinkKinds
        self.settings = settings
        self.writer = writer
        self.logger = logger
        self.planner = SlicePlanner(width: initialSliceWidth)
    }

    /// One cycle's working set: the state as it moves, what the cycle did so far, and the
    /// sinks still taking events (a sink that fails sits out the rest of the cycle).
    struct Progress {
        var state: AuditState
        var report = CycleReport()
        var active: [any Sink]
        /// Positions moved (an empty slice) or a sink failed without a write since; written at
        /// the end of the cycle.
        var unsaved = false
        /// A batch was written this cycle, maybe only to the state's update log: the end of
        /// the cycle folds it into the file.
        var batchWritten = false
        /// This member holds the group's lease in this cycle: the shared sinks take part.
        var leading = false
        /// See `PollCycle.sharedBehind`.
        var sharedBehind: Bool

        /// The oldest window start among the active sinks: where the window must begin.
        func windowStart(lookback: Int64) -> Int64? {
            active.compactMap { state.positions[$0.name]?.windowStart(lookback: lookback) }.min()
        }
    }

    /// Runs one cycle from `state` at wall-clock `now` (Unix seconds). On return or throw,
    /// `state` holds everything delivered. It is persisted after every delivered batch and at
    /// the end of the cycle; in between, the file may lag only by slices that were empty,
    /// which a restart merely re-reads. Catch-up slices follow one another without waiting.
    /// Cancellation stops it between pages or batches; the batch in flight is finished first.
    /// With `until` (replay), the window ends there instead of being open-ended.
    /// A failing sink does not throw: it is in `report.sinkFailures`, its position stays, and
    /// the next cycle retries it. Upstream and state errors throw.
    public mutating func run(state: inout AuditState, now: Int64, until: Int64? = nil) async throws -> CycleReport {
        var progress = Progress(state: state, active: [], sharedBehind: sharedBehind)
        defer {
            state = progress.state
            sharedBehind = progress.sharedBehind
        }
        source.cycleBegins()
        try await prepare(&progress, now: now)
        var start = progress.windowStart(lookback: settings.lookback) ?? now
        planner.beginCycle()
        // Slices wholly in the past, read at once (`readAhead`), oldest first.
        var ahead: [AheadSlice] = []
        defer { Self.drop(&ahead) }
        while let oldest = progress.windowStart(lookback: settings.lookback) {
            try Task.checkCancellation()
            // What only a sink that dropped out needed is not read again in this cycle.
            start = max(start, oldest)
            if let until, start >= until { break }
            if let next = ahead.first, next.start != start { await Self.dropAndWait(&ahead) }
            if ahead.isEmpty {
                readAhead(&ahead, from: start, delivering: nil, progress: progress, now: now, until: until)
            }
            let end: Int64?
            let cap: Int?
            let bounds: Bounds
            let outcome: WalkOutcome
            if let next = ahead.first, next.start == start {
                let slice = ahead.removeFirst()
                // The ones after it are read while it is delivered.
                readAhead(
                    &ahead, from: slice.end, delivering: slice.bounds, progress: progress, now: now, until: until)
                (end, cap, bounds) = (slice.end, slice.bounds.events, slice.bounds)
                outcome = try await take(slice, progress: &progress)
            } else {
                // Walked here, alone: the open-ended last slice, one second, or a cycle that
                // reads one slice at a time.
                end = planner.end(from: start, now: now, until: until)
                bounds = share(1)
                // One second is never cut into slices: if it alone overflows, the walk
                // delivers it in parts as it reads (`walk`).
                cap = (end ?? now) - start <= 1 ? nil : bounds.events
                // Slices after it are read at once, each within a share: an overflow sizes them so.
                let following = concurrency.flatMap { $0.maximum > 1 ? share($0.maximum).events : nil }
                outcome = try await self.walk(
                    from: start, before: end, cap: cap, following: following, progress: &progress, now: now)
            }
            let walk: Walk
            switch outcome {
            case .read(let read): walk = read
            case .overflowed(let width, let dataFrom, let denseFrom, let fitsBefore):
                // The slices read ahead after it were planned at the width that did not fit:
                // they are planned again from the narrower one.
                await Self.dropAndWait(&ahead)
                logger.debug(
                    "slice holds more than the cap, narrowing it",
                    metadata: [
                        "slice.start": "\(start)", "slice.width": "\((end ?? now) - start)", "slice.cap": "\(cap ?? 0)",
                        "slice.next_width": "\(width)",
                    ])
                if let below = planner.overflowed(
                    from: start, width: width, dataFrom: dataFrom, denseFrom: denseFrom, fitsBefore: fitsBefore)
                {
                    start = try await firstData(from: start, before: below, precision: width, progress: &progress)
                }
                continue
            }
            progress.report.sliceWalked(events: walk.events.count, bytes: walk.bytes)
            warnOdd(walk)
            // The slice is complete once delivered: everything visible before its end. The
            // open window ends at the newest event seen, never at "now"; and no position moves
            // past the server's clock, so neither a local clock ahead of the API's nor an event
            // stamped in the future (or in milliseconds) can skip events.
            let reached = (end ?? walk.newestSeen).map { min($0, walk.serverClock) }
            try await deliver(walk.events, completing: reached, clock: walk.serverClock, progress: &progress, now: now)
            logger.debug(
                "slice delivered",
                metadata: [
                    "slice.start": "\(start)", "slice.end": "\(end.map { "\($0)" } ?? "open")",
                    "slice.events": "\(walk.events.count)", "slice.read_ahead": "\(ahead.count)",
                    "api.concurrency": "\(concurrency?.limit ?? 1)",
                ])
            // A slice reaching past the server's clock is the last: what follows is not there yet.
            guard let end, end < until ?? .max, end <= walk.serverClock else { break }
            let kept = walk.events.count
            planner.walked(
                kept: kept, bound: fitting(bounds.events, kept: kept, bytes: walk.bytes, within: bounds.bytes))
            start = end
            if tookLease(&progress) { break }
        }
        if progress.unsaved {
            try write(&progress.state, as: .whole)
        } else if progress.batchWritten {
            try write(&progress.state, as: .cycleEnd)
        }
        // Empty slices moved the shared positions too; and the write renews the lease.
        await recordShared(&progress, settling: [])
        return progress.report
    }

    /// A standby that took the lease while this cycle walked (`Coordination.tookLease`) ends
    /// the cycle after the slice it delivered, and the next, leading, starts at once
    /// (`CycleReport.again`): the shared sinks do not wait for a long catch-up of the local
    /// ones to end first.
    func tookLease(_ progress: inout Progress) -> Bool {
        guard !progress.leading, !shared.isEmpty, coordination?.tookLease == true else { return false }
        logger.info("this member took the group's lease; the next cycle, leading, starts at once")
        progress.report.again = true
        return true
    }

    /// Events stamped ahead of the server's clock, each named once (delivered all the same).
    func warnOdd(_ walk: Walk) {
        for event in walk.odd {
            logger.warning(
                "event has an odd effective_at: it is delivered, but moves no position",
                metadata: [
                    "event.id": "\(event.id)", "event.type": "\(event.type)",
                    "event.effective_at": "\(event.effectiveAt)", "server.time": "\(walk.serverClock)",
                ])
        }
    }
}
