extension PollCycle {
    /// A slice read ahead of the one being delivered: slices wholly in the past are read up to
    /// `api.max_concurrency` at once, their pages taking turns for the `AdaptiveConcurrency`
    /// permits (so the API has at most its `limit` in flight), and delivered strictly in order
    /// (`run` takes them oldest first and delivers each as the serial walk would).
    ///
    /// Each is walked by a copy of the cycle, with a copy of the progress made when it was
    /// started: its sinks' windows are then older than when it is delivered, which only keeps
    /// more events than needed (positions move forward; `deliver` asks each sink again). Its
    /// bounds are a share of the window's (`share`), so everything kept at once, read ahead
    /// or being delivered, stays within `poll.max_window_events` and `poll.max_window_bytes`.
    struct AheadSlice {
        let start: Int64
        let end: Int64
        /// The bounds it was walked within: its share of the window's.
        let bounds: Bounds
        let task: Task<AheadRead, any Error>
    }

    /// What one slice may keep: events and their bytes.
    struct Bounds: Equatable {
        var events: Int
        var bytes: Int
    }

    /// What a slice read ahead gave, and what the walk's copy counted while reading it.
    struct AheadRead: Sendable {
        let outcome: WalkOutcome
        /// Its pages, the repeats it dropped and the items it set aside.
        let report: CycleReport
    }

    /// Starts reading slices after `from` (after the last one in hand) until `maximum` slices
    /// are in hand, with `delivering` (the one being delivered, if any), or until the next
    /// slice is not wholly in the past. Each takes `1 / maximum` of the window's bounds
    /// (`share`): the slices are as wide whatever the limit is now, and a limit that grows is
    /// used at once, by the slices in hand.
    mutating func readAhead(
        _ ahead: inout [AheadSlice], from: Int64, delivering: Bounds?, progress: Progress, now: Int64, until: Int64?
    ) {
        guard let concurrency, concurrency.maximum > 1 else { return }
        let slices = concurrency.maximum
        let bounds = share(slices)
        var next = ahead.last?.end ?? from
        var taken = ahead.reduce(delivering ?? Bounds(events: 0, bytes: 0)) {
            Bounds(events: $0.events + $1.bounds.events, bytes: $0.bytes + $1.bounds.bytes)
        }
        while ahead.count + (delivering == nil ? 0 : 1) < slices,
            taken.events + bounds.events <= max(settings.maxWindowEvents, bounds.events),
            taken.bytes + bounds.bytes <= max(settings.maxWindowBytes, bounds.bytes)
        {
            if let until, next >= until { return }
            // The planner's end for a slice from `next`, as the serial walk would ask it; a
            // slice that is open-ended (it reaches the present) or one second wide is walked
            // by `run` itself when it comes, and the planner is asked again then (what this
            // asking used up of it, a fitted end, is left for that).
            var planner = self.planner
            guard let end = planner.end(from: next, now: now, until: until), end - next > 1 else { return }
            self.planner = planner
            var cycle = self
            cycle.settings.maxWindowEvents = bounds.events
            cycle.settings.maxWindowBytes = bounds.bytes
            var copy = progress
            copy.report = CycleReport()
            let start = next
            let task = Task(executorPreference: executor) { [cycle, copy] in
                var cycle = cycle
                var copy = copy
                let outcome = try await cycle.walk(
                    from: start, before: end, cap: bounds.events, progress: &copy, now: now)
                return AheadRead(outcome: outcome, report: copy.report)
            }
            ahead.append(AheadSlice(start: start, end: end, bounds: bounds, task: task))
            taken.events += bounds.events
            taken.bytes += bounds.bytes
            next = end
        }
    }

    /// What each of `slices` in hand may keep: the window's bounds shared (by
    /// `api.max_concurrency` slices read at once; by one, walked alone).
    func share(_ slices: Int) -> Bounds {
        Bounds(
            events: max(settings.pageSize, settings.maxWindowEvents / max(1, slices)),
            bytes: max(1, settings.maxWindowBytes / max(1, slices)))
    }

    /// The oldest slice read ahead, once read: what its walk counted is added to the cycle's.
    mutating func take(_ slice: AheadSlice, progress: inout Progress) async throws -> WalkOutcome {
        let read = try await withTaskCancellationHandler {
            try await slice.task.value
        } onCancel: {
            slice.task.cancel()
        }
        progress.report.pages += read.report.pages
        progress.report.duplicatesDropped += read.report.duplicatesDropped
        progress.report.setAside += read.report.setAside
        return read.outcome
    }

    /// Slices read ahead that will not be delivered (one before them overflowed, the window
    /// moved, or the cycle ends): their reads stop, and what they read is dropped.
    static func drop(_ ahead: inout [AheadSlice]) {
        for slice in ahead { slice.task.cancel() }
        ahead = []
    }

    /// `drop`, and waits for their requests to end: what they were doing is over before the
    /// slices planned next are read (their permits free, their copies of the cycle gone).
    static func dropAndWait(_ ahead: inout [AheadSlice]) async {
        let dropped = ahead
        drop(&ahead)
        for slice in dropped { _ = try? await slice.task.value }
    }
}
