import Logging

extension PollCycle {
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
    /// `following`: the cap the slices after this one are read within, when smaller (a slice
    /// walked alone before slices read at once): an overflow sizes them for that.
    mutating func walk(
        from start: Int64, before end: Int64?, cap: Int?, following: Int? = nil, progress: inout Progress, now: Int64
    ) async throws -> WalkOutcome {
        let width = max(1, (end ?? now) - start)
        var density = SliceDensity(start: start, end: end ?? now)
        var kept: [AuditEvent] = []
        var keptBytes = 0
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
                    kept.append(event)
                    keptBytes += event.jsonCount
                    // Named in a warning; a minute's grace, as the API's own servers' clocks may
                    // differ by seconds (positions are capped at the clock regardless).
                    if event.effectiveAt > (page.serverTime ?? now) + Self.oddGrace {
                        odd.append(event)
                    }
                    if let cap, kept.count > cap || keptBytes > settings.maxWindowBytes {
                        density.page(page.events)
                        let bound = fitting(min(cap, following ?? cap), kept: kept.count, bytes: keptBytes)
                        return overflow(density, kept: kept, start: start, cap: bound, width: width)
                    }
                }
                density.page(page.events)
                // One second alone over a bound: what is kept is delivered now and the walk
                // goes on after it, so memory stays bounded however much one second holds.
                // Nothing is lost: the second stays open (a part completes nothing at or past
                // `start`, even with an event listed here but stamped later), and the ids
                // delivered are in each sink's `recent` and in `seen`.
                if cap == nil, kept.count >= settings.maxWindowEvents || keptBytes >= settings.maxWindowBytes {
                    progress.report.kept(events: kept.count, bytes: keptBytes)
                    let part = Self.oldestFirst(consume kept)
                    kept = []
                    keptBytes = 0
                    try await deliver(
                        part, completing: start, clock: serverClock ?? now, final: false, progress: &progress, now: now)
                    if progress.active.isEmpty { break }
                }
                guard page.hasMore else { break }
                // At the density where the walk is now, the rest would not fit: stop after this
                // page rather than after cap / page_size pages whose events would be thrown away.
                if let cap, !tenantOnly {
                    let bound = fitting(cap, kept: kept.count, bytes: keptBytes)
                    if density.projected(kept: kept.count) > Double(bound) {
                        let next = fitting(min(cap, following ?? cap), kept: kept.count, bytes: keptBytes)
                        return overflow(density, kept: kept, start: start, cap: next, width: width)
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
                events: Self.oldestFirst(consume kept), bytes: keptBytes, newestSeen: newestSeen, serverClock: clock,
                odd: odd))
    }

    /// The event bound `cap`, lowered to what `within` bytes (`poll.max_window_bytes`, or a
    /// slice's share of it) hold of events the size of those kept (`bytes` over `kept`):
    /// events of 100 KB reach the byte bound first.
    func fitting(_ cap: Int, kept: Int, bytes: Int, within: Int? = nil) -> Int {
        guard kept > 0, bytes > 0 else { return cap }
        return max(1, min(cap, (within ?? settings.maxWindowBytes) / max(1, bytes / kept)))
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

    /// The passes every slice gets (`tenant_only` false, then true): the organization's, then
    /// (unless off, or rejected under `auto`) the tenant's.
    var passes: [Bool] {
        let tenant = settings.includeTenantEvents == .on || settings.includeTenantEvents == .auto && !tenantPassRejected
        return tenant ? [false, true] : [false]
    }

    /// One page; nil when the API rejects `tenant_only` under `auto`, which ends the tenant
    /// walk (said once, whichever slice meets it first) until a restart or reload.
    func fetch(_ query: AuditLogQuery) async throws -> AuditPage? {
        do {
            return try await source.page(query)
        } catch let error as UpstreamError
            where query.tenantOnly && settings.includeTenantEvents == .auto && Self.rejectsTenantOnly(error)
        {
            guard tenantPassRefusal.note() else { return nil }
            logger.notice(
                "the API does not accept tenant_only: tenant events (tenant.*, role.bound_to_resource, ...) are not read until a restart or reload; set api.include_tenant_events to false to skip them, or true to treat this as an error",
                metadata: ["upstream.error": "\(error)"])
            return nil
        }
    }

    /// Where data begins in `[start, below)`, to within `precision` seconds, by probes of one
    /// item: `[start, result)` held nothing when probed, which is all an empty slice would
    /// have shown; late events there are the lookback's, as ever.
    ///
    /// The organization's events are searched first, `AdaptiveConcurrency.limit` probes at
    /// once cutting the range into that many parts and one (a binary search at one): an empty
    /// stretch of any length costs log(length / precision) rounds. Then one tenant probe asks
    /// whether the ground found empty holds tenant events (few, and rarely older than the
    /// organization's); only if it does is the tenant's edge searched below, one probe at a time.
    mutating func firstData(
        from start: Int64, before below: Int64, precision: Int64, progress: inout Progress
    ) async throws -> Int64 {
        let found = try await edge(from: start, before: below, precision: precision, progress: &progress)
        guard found > start, passes.contains(true) else { return found }
        guard try await !holdsNothing(from: start, before: [found], tenantOnly: true, progress: &progress)[0] else {
            return found
        }
        return try await edge(from: start, before: found, precision: precision, tenantOnly: true, progress: &progress)
    }

    /// `firstData` for one pass: where its events begin in `[start, below)`, data being known
    /// (or, for the tenant's, seen) at `below`.
    func edge(
        from start: Int64, before below: Int64, precision: Int64, tenantOnly: Bool = false, progress: inout Progress
    ) async throws -> Int64 {
        var low = start
        var high = below
        let precision = max(1, precision)
        while high - low > precision {
            try Task.checkCancellation()
            let parts = tenantOnly ? 2 : max(2, min((concurrency?.limit ?? 1) + 1, Int((high - low) / precision)))
            let step = (high - low) / Int64(parts)
            let points = (1..<parts).map { low + step * Int64($0) }
            let empty = try await holdsNothing(from: low, before: points, tenantOnly: tenantOnly, progress: &progress)
            if let first = empty.firstIndex(of: false) {
                high = points[first]
                if first > 0 { low = points[first - 1] }
            } else {
                low = points[points.count - 1]
            }
        }
        return low
    }

    /// Whether `[low, point)` held nothing, for each of `points`: one item asked of each, all
    /// at once. A tenant pass the API rejects (under `auto`) holds nothing.
    func holdsNothing(
        from low: Int64, before points: [Int64], tenantOnly: Bool, progress: inout Progress
    ) async throws -> [Bool] {
        let queries = points.map { point in
            var query = AuditLogQuery(filters: settings.filters)
            query.effectiveAtGreaterOrEqual = low
            query.effectiveAtLessThan = point
            query.limit = 1
            query.tenantOnly = tenantOnly
            return query
        }
        var empty: [Bool] = []
        if tenantOnly || queries.count == 1 {
            // The tenant's one at a time (searched only when its events lie below the
            // organization's), through `fetch`, which notes a refused tenant pass.
            for query in queries { empty.append(try await fetch(query)?.events.isEmpty ?? true) }
        } else {
            let source = self.source
            empty = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
                for (index, query) in queries.enumerated() {
                    group.addTask { (index, try await source.page(query).events.isEmpty) }
                }
                var empty = Array(repeating: true, count: queries.count)
                for try await (index, isEmpty) in group { empty[index] = isEmpty }
                return empty
            }
        }
        heartbeat?.beat()
        progress.report.pages += queries.count
        return empty
    }

    /// The outcome of a slice that does not fit: a width for about half the cap, where its
    /// data was seen to begin when the rest lies below (newest first), and where the dense
    /// part began: listed oldest first, the sparse ground before it was read on the way there.
    ///
    /// Listed oldest first, the events kept are the slice's start: the time of the one half
    /// the cap in is where a slice from the same start fits. That is only a size (if the server
    /// did not list in time order, the next slice may overflow again, and nothing is lost).
    func overflow(_ density: SliceDensity, kept: [AuditEvent], start: Int64, cap: Int, width: Int64) -> WalkOutcome {
        let seen = density.count > 0
        var fitsBefore: Int64?
        if seen, !density.newestFirst {
            let times = kept.map(\.effectiveAt).filter { $0 >= start }.sorted()
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
}
