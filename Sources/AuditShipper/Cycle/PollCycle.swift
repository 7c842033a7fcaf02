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
    let logger: Logger
    /// Beaten at every page and batch, for the watchdog.
    let heartbeat: Heartbeat?
    let metrics: DaemonMetrics?
    /// Seconds per catch-up slice, kept from one cycle to the next: sized from the density of
    /// the events seen when a slice holds (or would hold) more than the cap, grown up to
    /// fourfold while slices hold little (empty decades before an organization's first event
    /// cost a few requests).
    public private(set) var sliceWidth: Int64
    static let maxSliceWidth: Int64 = 128 * 366 * 86_400
    /// How far ahead of the server's clock an event may be stamped before it is called odd.
    static let oddGrace: Int64 = 60
    /// The API rejected `tenant_only` under `include_tenant_events: auto`: the tenant pass is
    /// skipped until a restart or reload (which builds a new cycle).
    public private(set) var tenantPassRejected = false

    public init(
        source: any AuditLogSource, sinks: [any Sink], sinkStarts: [String: Int64] = [:],
        sinkKinds: [String: String] = [:], settings: CycleSettings,
        logger: Logger, initialSliceWidth: Int64 = 3600, heartbeat: Heartbeat? = nil, metrics: DaemonMetrics? = nil,
        deadLetters: DeadLetterFile = DeadLetterFile(path: nil),
        writer: StateWriter
    ) {
        self.deadLetters = deadLetters
        self.heartbeat = heartbeat
        self.metrics = metrics
        self.source = source
        self.sinks = sinks
        self.sinkStarts = sinkStarts
        self.sinkKinds = sinkKinds
        self.settings = settings
        self.writer = writer
        self.logger = logger
        self.sliceWidth = max(1, initialSliceWidth)
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

        /// The oldest window start among the active sinks: where the walk must begin.
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
        var progress = Progress(state: state, active: [])
        defer { state = progress.state }
        source.cycleBegins()
        try await prepare(&progress, now: now)
        var start = progress.windowStart(lookback: settings.lookback) ?? now
        // Where an overflow saw dense data begin, and a width that holds half the cap there:
        // slices growing over sparse ground stop that far into it instead of overflowing again.
        var dense: (from: Int64, width: Int64)?
        // The slices so far found nothing: the ground below data seen is likely empty too.
        var barren = true
        // Oldest first: the end at which the slice just overflowed held half the cap.
        var fitted: Int64?
        while let oldest = progress.windowStart(lookback: settings.lookback) {
            try Task.checkCancellation()
            // What only a sink that dropped out needed is not read again in this cycle.
            start = max(start, oldest)
            // A slice that ends in the past is bounded with effective_at[lt]; the last one is
            // open-ended so that events stamped after our clock's "now" are not skipped.
            if let until, start >= until { break }
            if let known = dense, start >= known.from { dense = nil }
            if let end = fitted, end <= start { fitted = nil }
            let reach = fitted ?? dense.map { min(start + sliceWidth, $0.from + $0.width) } ?? start + sliceWidth
            fitted = nil
            let end: Int64? =
                if let until { min(reach, until) } else {
                    reach < now ? reach : nil
                }
            // One second is never cut into slices: if it alone overflows, the walk delivers it
            // in parts as it reads (`walk`).
            let singleSecond = (end ?? now) - start <= 1
            let cap = singleSecond ? nil : settings.maxWindowEvents
            let walk: Walk
            switch try await self.walk(from: start, before: end, cap: cap, progress: &progress, now: now) {
            case .read(let read): walk = read
            case .overflowed(let width, let dataFrom, let denseFrom, let fitsBefore):
                logger.debug(
                    "slice holds more than the cap, narrowing it",
                    metadata: [
                        "slice.start": "\(start)", "slice.width": "\((end ?? now) - start)", "slice.cap": "\(cap ?? 0)",
                        "slice.next_width": "\(width)",
                    ])
                sliceWidth = width
                // Data was seen far above the slice's start, over ground where nothing was found
                // so far: find where it begins with a few probes instead of growing empty slices
                // up to it. (Over sparse ground the probes would find the sparse events, not the
                // dense data's edge, and cost more than they save.)
                if let denseFrom { dense = (denseFrom, width) }
                fitted = fitsBefore
                if let dataFrom, barren, dataFrom - start > 4 * width {
                    start = try await firstData(from: start, before: dataFrom, precision: width, progress: &progress)
                }
                continue
            }
            progress.report.slices += 1
            for event in walk.odd {
                logger.warning(
                    "event has an odd effective_at: it is delivered, but moves no position",
                    metadata: [
                        "event.id": "\(event.id)", "event.type": "\(event.type)",
                        "event.effective_at": "\(event.effectiveAt)", "server.time": "\(walk.serverClock)",
                    ])
            }
            // The slice is complete once delivered: everything visible before its end. The
            // open window ends at the newest event seen, never at "now"; and no position moves
            // past the server's clock, so neither a local clock ahead of the API's nor an event
            // stamped in the future (or in milliseconds) can skip events.
            let reached = (end ?? walk.newestSeen).map { min($0, walk.serverClock) }
            try await deliver(walk.events, completing: reached, clock: walk.serverClock, progress: &progress, now: now)
            // A slice reaching past the server's clock is the last: what follows is not there yet.
            guard let end, end < until ?? .max, end <= walk.serverClock else { break }
            // Aim the next slice at half the cap (in events of the size seen), growing at most
            // fourfold at a time.
            let held = walk.events.count
            let bound = fitting(settings.maxWindowEvents, held: held, bytes: walk.bytes)
            barren = held == 0
            if held < bound / 4 {
                let factor = held == 0 ? 4 : min(4, max(1, bound / 2 / held))
                sliceWidth = min(sliceWidth * Int64(factor), Self.maxSliceWidth)
            }
            start = end
        }
        if progress.unsaved {
            try write(&progress.state, as: .whole)
        } else if progress.batchWritten {
            try write(&progress.state, as: .cycleEnd)
        }
        return progress.report
    }

    /// Before anything is read: every configured sink gets a position (new ones where their
    /// configuration says, removed ones are dropped), a sink's destination that can tell what
    /// it holds of an interrupted batch says so, and every sink must answer its check (a
    /// probe, cheap) before it is given anything: a sink that is down sits the cycle out, and
    /// its backlog is not read at every poll while it is.
    func prepare(_ progress: inout Progress, now: Int64) async throws {
        let changes = progress.state.reconcile(sinks: sinks.map(\.name), starts: sinkStarts, kinds: sinkKinds)
        for (name, old) in changes.renamed.sorted(by: { $0.key < $1.key }) {
            logger.notice(
                "sink's default name changed with its url or path; it keeps its position and its backlog",
                metadata: ["sink": "\(name)", "sink.was": "\(old)"])
        }
        for name in changes.added {
            let position = progress.state.positions[name]!
            let metadata: Logger.Metadata = [
                "sink": "\(name)", "sink.complete_before": "\(TimeSpec.format(position.completeBefore))",
            ]
            // A sink of its kind left in the same change, and which was which cannot be told.
            if let kind = sinkKinds[name], changes.removed.contains(where: { $0.hasPrefix(kind) }) {
                logger.warning(
                    "sink has no position yet and starts where the others are: what a removed sink of its kind had not delivered is not sent to it; to keep a position when a url or path changes, give the sink a name:",
                    metadata: metadata)
            } else {
                logger.notice("sink has no position yet, starting it", metadata: metadata)
            }
        }
        for name in changes.removed {
            logger.notice("sink is no longer configured, its position is dropped", metadata: ["sink": "\(name)"])
        }
        var recorded: [any Sink] = []
        for sink in sinks {
            let receipts: [Receipt]
            do {
                receipts = try await sink.receipts()
            } catch {
                progress.fail(
                    sink, "cannot tell what the destination already holds: \(error)", now: now, logger, metrics)
                continue
            }
            if !receipts.isEmpty {
                let held = progress.state.positions[sink.name]!.hold(receipts)
                logger.notice(
                    "sink already holds events of an interrupted batch; they are not sent again",
                    metadata: ["sink": "\(sink.name)", "sink.held": "\(held)"])
                recorded.append(sink)
            }
            do {
                try await sink.check()
            } catch {
                progress.fail(sink, "\(error)", now: now, logger, metrics)
                continue
            }
            progress.active.append(sink)
        }
        if !changes.isEmpty || !recorded.isEmpty {
            progress.state.updatedAt = now
            try write(&progress.state, as: .whole)
            progress.unsaved = false
            for sink in recorded { await settle(sink) }
        }
    }

    /// What walking a slice gave: its events, or a narrower width to try instead.
    enum WalkOutcome {
        case read(Walk)
        /// The slice holds more than the cap (or, at the density of what was read so far,
        /// would hold more than twice it): nothing of it is delivered; `width` should hold
        /// about half the cap. `dataFrom`: events were seen from there on, none read below
        /// (newest first). `denseFrom`: where the data that overflowed was seen to begin (the
        /// last page read, oldest first; `dataFrom` newest first).
        /// `fitsBefore` (oldest first): the slice from the same start to there held about half
        /// the cap among the events read, so it is the next slice's end.
        case overflowed(width: Int64, dataFrom: Int64?, denseFrom: Int64?, fitsBefore: Int64?)
    }

    struct Walk {
        var events: [AuditEvent]
        /// The bytes of `events`.
        var bytes: Int
        var newestSeen: Int64?
        /// The server's clock when the walk began (its first response's `Date`; the local clock
        /// if the server sent none): nothing newer can be complete yet.
        var serverClock: Int64
        /// Events kept whose `effective_at` is ahead of the server's clock.
        var odd: [AuditEvent]
    }

    /// Where one sink's window starts and the newest id it holds, for the walk's filter.
    struct SinkWindow {
        var position: SinkPosition
        var start: Int64
        /// Nothing newer than this can be in `recent`: the lookup is skipped.
        var newestHeld: Int64

        init(_ position: SinkPosition, lookback: Int64) {
            self.position = position
            start = position.windowStart(lookback: lookback)
            newestHeld = position.newestHeld ?? .min
        }

        /// `SinkPosition.needs`, without its lookup where `recent` cannot hold the event: only
        /// a first sift, since an id listed again with a later `effective_at` passes it;
        /// `deliver` asks `needs` itself.
        func needs(_ event: AuditEvent) -> Bool {
            event.effectiveAt > newestHeld ? event.effectiveAt >= start : position.needs(event, windowStart: start)
        }
    }

    /// Visits every item of `[start, end)` with `after=<last_id>` until `has_more` is false,
    /// whatever order the server uses, and keeps what some active sink needs; `.overflowed`
    /// when more than `cap` such events turn up, or as soon as the ones seen show that far
    /// more would: an overflow found after one page costs one request, not cap / page_size.
    mutating func walk(
        from start: Int64, before end: Int64?, cap: Int?, progress: inout Progress, now: Int64
    ) async throws -> WalkOutcome {
        let width = max(1, (end ?? now) - start)
        var density = Density(start: start, end: end ?? now)
        var held: [AuditEvent] = []
        var heldBytes = 0
        var odd: [AuditEvent] = []
        var seen = Set<HashedID>()
        var newestSeen: Int64?
        var serverClock: Int64?
        let windows = progress.active.map {
            SinkWindow(progress.state.positions[$0.name]!, lookback: settings.lookback)
        }
        for tenantOnly in passes {
            var query = AuditLogQuery(filters: settings.filters)
            query.effectiveAtGreaterOrEqual = start
            query.effectiveAtLessThan = end
            query.limit = settings.pageSize
            query.tenantOnly = tenantOnly
            // A page that lies cannot keep the walk going: every cursor is new, and the pages
            // are bounded (ten times what the cap holds, lookback re-reads included).
            var cursors = Set<String>()
            var pages = 0
            let pageBound = 10 * settings.maxWindowEvents / max(1, settings.pageSize) + 10
            while true {
                try Task.checkCancellation()
                guard let page = try await fetch(query) else { break }
                serverClock = serverClock ?? page.serverTime
                heartbeat?.beat()
                progress.report.pages += 1
                metrics?.eventsReceived.increment(by: Int64(page.events.count))
                for item in page.unreadable { try setAside(item, progress: &progress, now: now) }
                for event in page.events {
                    newestSeen = max(newestSeen ?? event.effectiveAt, event.effectiveAt)
                    guard seen.insert(event.hashedID).inserted, windows.contains(where: { $0.needs(event) }) else {
                        progress.report.duplicatesDropped += 1
                        metrics?.duplicatesDropped.increment()
                        continue
                    }
                    held.append(event)
                    heldBytes += event.jsonCount
                    // Named in a warning; a minute's grace, as the API's own servers' clocks may
                    // differ by seconds (positions are capped at the clock regardless).
                    if event.effectiveAt > (page.serverTime ?? now) + Self.oddGrace {
                        odd.append(event)
                    }
                    if let cap, held.count > cap || heldBytes > settings.maxWindowBytes {
                        density.page(page.events)
                        let bound = fitting(cap, held: held.count, bytes: heldBytes)
                        return overflow(density, held: held, start: start, cap: bound, width: width)
                    }
                }
                density.page(page.events)
                // One second alone over a bound: what is held is delivered now and the walk
                // goes on after it, so memory stays bounded however much one second holds.
                // Nothing is lost: the second stays open (a part completes nothing at or past
                // `start`, even with an event listed here but stamped later), and the ids
                // delivered are in each sink's `recent` and in `seen`.
                if cap == nil, held.count >= settings.maxWindowEvents || heldBytes >= settings.maxWindowBytes {
                    let part = Self.oldestFirst(consume held)
                    held = []
                    heldBytes = 0
                    try await deliver(
                        part, completing: start, clock: serverClock ?? now, final: false, progress: &progress, now: now)
                    if progress.active.isEmpty { break }
                }
                guard page.hasMore else { break }
                // At the density where the walk is now, the rest would not fit: stop after this
                // page rather than after cap / page_size pages whose events would be thrown away.
                if let cap, !tenantOnly {
                    let bound = fitting(cap, held: held.count, bytes: heldBytes)
                    if density.projected(held: held.count) > Double(bound) {
                        return overflow(density, held: held, start: start, cap: bound, width: width)
                    }
                }
                guard let last = page.lastID ?? page.lastListedID else {
                    throw UpstreamError.malformedPage(
                        MalformedPage(
                            reason: "has_more is true but the page has no last_id to continue after", offset: 0))
                }
                guard cursors.insert(last).inserted else {
                    throw UpstreamError.malformedPage(
                        MalformedPage(
                            reason: "has_more is true but the walk returned to \(last), seen before", offset: 0))
                }
                pages += 1
                guard pages < pageBound else {
                    throw UpstreamError.malformedPage(
                        MalformedPage(
                            reason: "has_more is still true after \(pages) pages, more than a window can hold "
                                + "(poll.max_window_events \(settings.maxWindowEvents))", offset: 0))
                }
                query.after = last
            }
        }
        let clock = serverClock ?? now
        if let newestSeen { metrics?.sawEvent(at: min(newestSeen, clock)) }
        return .read(
            Walk(
                events: Self.oldestFirst(consume held), bytes: heldBytes, newestSeen: newestSeen, serverClock: clock,
                odd: odd))
    }

    /// The event bound `cap`, lowered to what `poll.max_window_bytes` holds of events the size
    /// of those held (`bytes` over `held`): events of 100 KB reach the byte bound first.
    func fitting(_ cap: Int, held: Int, bytes: Int) -> Int {
        guard held > 0, bytes > 0 else { return cap }
        return max(1, min(cap, settings.maxWindowBytes / max(1, bytes / held)))
    }

    /// An item that is no readable event goes to the dead-letter file, once, named in an error
    /// line; the walk goes on past it. If it cannot be written, the cycle fails before any
    /// position passes it (a state error, as when the state cannot be written).
    func setAside(_ item: UnreadableItem, progress: inout Progress, now: Int64) throws {
        guard try deadLetters.setAside(item, now: now) else { return }
        progress.report.setAside += 1
        metrics?.deadLetters.increment()
        logger.error(
            "an item of the page is not an event that can be delivered; it is set aside in the dead-letter file and the cycle goes on",
            metadata: [
                "event.id": "\(item.id ?? "none")", "item.index": "\(item.index)", "item.reason": "\(item.reason)",
                "item.bytes": "\(item.json.count)",
                "dead_letters.path": "\(deadLetters.path ?? "none (replay keeps no state)")",
            ])
    }

    /// Oldest first; within one second, the reverse of the API's (newest-first) order. What
    /// the API sends newest first is that order reversed, without a sort (the common case).
    static func oldestFirst(_ events: consuming [AuditEvent]) -> [AuditEvent] {
        var newestFirst = true
        for index in events.indices.dropFirst() where events[index - 1].effectiveAt < events[index].effectiveAt {
            newestFirst = false
            break
        }
        if newestFirst {
            // In place: the walk hands over its only reference, so no event is retained again.
            events.reverse()
            return events
        }
        return events.enumerated().sorted {
            $0.element.effectiveAt != $1.element.effectiveAt
                ? $0.element.effectiveAt < $1.element.effectiveAt : $0.offset > $1.offset
        }.map(\.element)
    }

    /// How densely a slice's kept events lie, overall and on the page read last (events
    /// outside the slice, such as odd timestamps, are left out).
    struct Density {
        let start: Int64
        let end: Int64
        var count = 0
        var oldest = Int64.max
        var newest = Int64.min
        /// The last page's events in the slice: how many, and the seconds they span.
        var pageCount = 0
        var pageOldest = Int64.max
        var pageNewest = Int64.min
        /// The server lists newest first (as OpenAI appears to): what is left of the slice
        /// lies below `oldest`; else above `newest`.
        var newestFirst = true

        init(start: Int64, end: Int64) {
            self.start = start
            self.end = end
        }

        mutating func page(_ events: [AuditEvent]) {
            pageCount = 0
            pageOldest = .max
            pageNewest = .min
            if let first = events.first, let last = events.last, first.effectiveAt != last.effectiveAt {
                newestFirst = first.effectiveAt > last.effectiveAt
            }
            for event in events where event.effectiveAt >= start && event.effectiveAt < end {
                count += 1
                pageCount += 1
                oldest = min(oldest, event.effectiveAt)
                newest = max(newest, event.effectiveAt)
                pageOldest = min(pageOldest, event.effectiveAt)
                pageNewest = max(pageNewest, event.effectiveAt)
            }
        }

        /// Events per second where the walk is now (the last page), if it tells.
        var local: Double? {
            guard pageCount >= 10 else { return nil }
            return Double(pageCount) / Double(pageNewest - pageOldest + 1)
        }

        /// The part of the slice not read yet, in seconds.
        var remaining: Int64 {
            guard count > 0 else { return end - start }
            return newestFirst ? oldest - start : end - newest
        }

        /// `held` plus what the rest of the slice would hold at the local density.
        func projected(held: Int) -> Double {
            guard let local else { return 0 }
            return Double(held) + local * Double(remaining)
        }

        /// A width that should hold about `target` events at the local density (the overall
        /// one without it): at most half of `width`, so the next try narrows; one second at least.
        func width(holding target: Int, within width: Int64) -> Int64 {
            let rate = local ?? (count > 0 ? Double(count) / Double(newest - oldest + 1) : 0)
            guard rate > 0 else { return max(1, width / 2) }
            return max(1, Int64(min(Double(target) / rate, Double(width / 2))))
        }
    }

    /// The walks every slice gets: the organization's, then (unless off, or rejected under
    /// `auto`) the tenant's.
    var passes: [Bool] {
        let tenant = settings.includeTenantEvents == .on || settings.includeTenantEvents == .auto && !tenantPassRejected
        return tenant ? [false, true] : [false]
    }

    /// One page; nil when the API rejects `tenant_only` under `auto`, which ends the tenant
    /// walk (said once) until a restart or reload.
    mutating func fetch(_ query: AuditLogQuery) async throws -> AuditPage? {
        do {
            return try await source.page(query)
        } catch let error as UpstreamError
            where query.tenantOnly && settings.includeTenantEvents == .auto && Self.rejectsTenantOnly(error)
        {
            tenantPassRejected = true
            logger.notice(
                "the API does not accept tenant_only: tenant events (tenant.*, role.bound_to_resource, ...) are not read until a restart or reload; set api.include_tenant_events to false to skip them, or true to treat this as an error",
                metadata: ["upstream.error": "\(error)"])
            return nil
        }
    }

    /// Where data begins in `[start, below)`, to within `precision` seconds: probes of one
    /// item (every walk) halve the range, so an empty stretch of any length costs
    /// log2(length / precision) requests. `[start, result)` held nothing when probed, which
    /// is all an empty slice would have shown; late events there are the lookback's, as ever.
    mutating func firstData(
        from start: Int64, before below: Int64, precision: Int64, progress: inout Progress
    ) async throws -> Int64 {
        var low = start
        var high = below
        while high - low > max(1, precision) {
            try Task.checkCancellation()
            let middle = low + (high - low) / 2
            var empty = true
            for tenantOnly in passes where empty {
                var query = AuditLogQuery(filters: settings.filters)
                query.effectiveAtGreaterOrEqual = low
                query.effectiveAtLessThan = middle
                query.limit = 1
                query.tenantOnly = tenantOnly
                guard let page = try await fetch(query) else { continue }
                heartbeat?.beat()
                progress.report.pages += 1
                empty = page.events.isEmpty
            }
            if empty { low = middle } else { high = middle }
        }
        return low
    }

    /// The outcome of a slice that does not fit: a width for about half the cap, where its
    /// data was seen to begin when the rest lies below (newest first), and where the dense
    /// part began: listed oldest first, the sparse ground before it was read on the way there.
    ///
    /// Listed oldest first, the events held are the slice's start: the time of the one half
    /// the cap in is where a slice from the same start fits. That is only a size (if the server
    /// did not list in time order, the next slice may overflow again, and nothing is lost).
    func overflow(_ density: Density, held: [AuditEvent], start: Int64, cap: Int, width: Int64) -> WalkOutcome {
        let seen = density.count > 0
        var fitsBefore: Int64?
        if seen, !density.newestFirst {
            let times = held.map(\.effectiveAt).filter { $0 >= start }.sorted()
            fitsBefore = times.count > cap / 2 ? times[cap / 2] : density.pageOldest
            if let end = fitsBefore, end <= start { fitsBefore = nil }
        }
        return .overflowed(
            width: density.width(holding: cap / 2, within: width),
            dataFrom: density.newestFirst && seen ? density.oldest : nil,
            denseFrom: !seen ? nil : density.newestFirst ? density.oldest : min(density.pageOldest, density.newest),
            fitsBefore: fitsBefore)
    }

    /// A refusal of `tenant_only` itself: a 400 naming it, or 403/404 on the tenant pass only.
    static func rejectsTenantOnly(_ error: UpstreamError) -> Bool {
        switch error.underlying {
        case .badRequest(let status, let message): status == 404 || status == 400 && message.contains("tenant_only")
        case .keyRejected(let status, _): status == 403
        default: false
        }
    }

    /// Hands a slice's `events` to the active sinks in batches, each sink only what it does
    /// not hold; the state is written after each batch. With the last batch (or alone, for an
    /// empty slice) the slice is complete for every sink still active: its T moves to
    /// `completing`, unless this is not the `final` part of the slice (one second read in
    /// parts). No T moves past `completing` (nor `clock`, the server's), whatever the events'
    /// own stamps say. A batch holds at most `batchSize` events and `maxBatchBytes` bytes
    /// (one event at least).
    func deliver(
        _ events: [AuditEvent], completing end: Int64?, clock: Int64, final: Bool = true, progress: inout Progress,
        now: Int64
    ) async throws {
        // What a batch may complete: up to the slice's end (capped at the server's clock
        // already), or the clock where the slice reached nothing.
        let bound = end ?? clock
        var offset = 0
        repeat {
            var batchEnd = offset
            var batchBytes = 0
            while batchEnd < events.count, batchEnd - offset < settings.batchSize,
                batchEnd == offset || batchBytes + events[batchEnd].jsonCount <= settings.maxBatchBytes
            {
                batchBytes += events[batchEnd].jsonCount
                batchEnd += 1
            }
            let batch = events[offset..<batchEnd]
            offset += batch.count
            // Per event of the batch: given to some sink, and late for some sink (counted once).
            var given = [Bool](repeating: false, count: batch.count)
            var late = [Bool](repeating: false, count: batch.count)
            var delivering: [any Sink] = []
            let marks = progress.marks()
            for sink in progress.active {
                // Read in a scope of its own: a copy of the position still alive when it is
                // accepted below would make that copy every id the sink holds.
                let completeBefore: Int64
                let indices: [Int]
                do {
                    let position = progress.state.positions[sink.name]!
                    let windowStart = position.windowStart(lookback: settings.lookback)
                    completeBefore = position.completeBefore
                    indices = batch.indices.filter { position.needs(batch[$0], windowStart: windowStart) }
                }
                let subset = indices.map { batch[$0] }
                do {
                    if !subset.isEmpty {
                        // Nothing lost: a sink's position moves only after it accepted the batch.
                        try await sink.deliver(subset)
                        heartbeat?.beat()
                        delivering.append(sink)
                        metrics?.eventsSent(sink: sink.name).increment(by: Int64(subset.count))
                    }
                } catch {
                    progress.fail(sink, "\(error)", now: now, logger, metrics)
                    continue
                }
                for index in indices {
                    given[index - batch.startIndex] = true
                    if batch[index].effectiveAt < completeBefore { late[index - batch.startIndex] = true }
                }
                // Never past what the slice covers: a server may list an event outside the
                // range asked for (a late stamp, milliseconds, a filter ignored), and the ground
                // between the slice's end and that event has not been read yet.
                progress.state.positions[sink.name]!.accept(
                    subset, through: batch.last.map { min($0.effectiveAt, bound) })
            }
            if final, offset == events.count, let end {
                for sink in progress.active { progress.state.positions[sink.name]!.complete(before: end) }
            }
            for sink in progress.active { progress.state.positions[sink.name]!.prune(lookback: settings.lookback) }
            progress.report.delivered += given.count { $0 }
            progress.report.lateEvents += late.count { $0 }
            metrics?.lateEvents.increment(by: Int64(late.count { $0 }))
            if let newest = batch.last?.effectiveAt, !delivering.isEmpty {
                progress.report.newestDelivered = max(progress.report.newestDelivered ?? newest, newest)
            }
            if delivering.isEmpty {
                if progress.marks() != marks {
                    progress.state.updatedAt = now
                    progress.unsaved = true
                }
            } else {
                progress.state.updatedAt = now
                // In memory first: the batch *was* delivered. If the write fails, the runner
                // keeps this state and delivers nothing more until it is written.
                progress.unsaved = true
                try write(&progress.state, as: .batch)
                progress.unsaved = false
                progress.batchWritten = true
                for sink in delivering { await settle(sink) }
            }
            if offset < events.count, Task.isCancelled { throw CancellationError() }
        } while offset < events.count && !progress.active.isEmpty
    }

    /// Writes the state (to `writer`), counts it, and shows each sink's position.
    func write(_ state: inout AuditState, as kind: StateStore.Write) throws {
        try writer.save(state, kind)
        state.markWritten()
        guard let metrics, kind != .cycleEnd else { return }
        metrics.stateWrites.increment()
        for (name, position) in state.positions {
            metrics.sinkPosition(sink: name).set(Double(position.completeBefore))
        }
    }

    /// The sink's position is on disk: its destination's record of the batch is no longer needed.
    func settle(_ sink: any Sink) async {
        do {
            try await sink.positionRecorded()
        } catch {
            logger.warning(
                "cannot clear the sink's record of delivered events; it is read again at the next cycle",
                metadata: ["sink": "\(sink.name)", "error": "\(error)"])
        }
    }
}

extension PollCycle.Progress {
    /// Each position's T and floor: what an empty slice can move.
    func marks() -> [String: [Int64]] {
        state.positions.mapValues { [$0.completeBefore, $0.recentSince] }
    }

    /// A sink failed: it keeps its position, records why (written at the latest at the end of
    /// the cycle, for `state show`), and sits out the rest of the cycle.
    mutating func fail(_ sink: any Sink, _ reason: String, now: Int64, _ logger: Logger, _ metrics: DaemonMetrics?) {
        metrics?.sinkErrors(sink: sink.name).increment()
        state.positions[sink.name]?.fail(reason, at: now)
        state.updatedAt = now
        unsaved = true
        report.sinkFailures[sink.name] = reason
        active.removeAll { $0.name == sink.name }
        logger.error(
            "sink failed, its position did not move; the other sinks go on, and it is retried at the next poll",
            metadata: ["sink": "\(sink.name)", "error": "\(reason)"])
    }
}
