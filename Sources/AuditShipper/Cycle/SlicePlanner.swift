/// How far the next slice of the window reaches: the cycle's sizing of its reads, apart from
/// the reads themselves so it can be tested with numbers alone (`SlicePlannerTests`).
///
/// A slice is a range `[start, end)` of `effective_at` walked as one unit, bounded by
/// `poll.max_window_events` and `poll.max_window_bytes`. The planner keeps a width (seconds
/// per slice) from one cycle to the next and learns from each slice:
/// - one that overflowed gives the width that holds about half the bound at the density seen
///   (`overflowed`), where dense data was seen to begin, and (listed oldest first) the end at
///   which a slice from the same start fits;
/// - one that held under a quarter of the bound grows the width up to fourfold (`walked`),
///   sixteenfold while the cycle has found no data at all (a catch-up from `beginning`
///   crosses decades of empty ground), but never past one dense width beyond where an
///   overflow saw dense data begin, so a slice growing over sparse ground does not overflow
///   again on reaching it;
/// - when the data was seen far above the slice's start and no slice so far found anything,
///   the ground below it is likely empty: `overflowed` says where to probe for its edge
///   instead of growing empty slices up to it.
struct SlicePlanner: Sendable {
    static let maxWidth: Int64 = 128 * 366 * 86_400
    /// Seconds per slice: what the next slice spans unless one of the limits below is nearer.
    private(set) var width: Int64
    /// Where an overflow saw dense data begin, and a width that holds half the bound there.
    private var dense: (from: Int64, width: Int64)?
    /// No slice of this cycle found anything yet.
    private var barren = true
    /// Listed oldest first, the slice that just overflowed held half the bound before here.
    private var fitted: Int64?
    /// No slice of this cycle kept an event or overflowed yet: an empty one grows the width
    /// sixteenfold. Unlike `barren`, an overflow (data seen) ends it for the cycle, so an
    /// empty slice just below data whose edge the probes found grows the next fourfold at most.
    private var untouched = true

    init(width: Int64) {
        self.width = max(1, width)
    }

    /// A new cycle: what the last one learnt of where data lies is forgotten; the width stays.
    mutating func beginCycle() {
        dense = nil
        barren = true
        untouched = true
        fitted = nil
    }

    /// The end of the slice that starts at `start`: bounded while it ends in the past (or at
    /// `until`, for a replay), nil for the open-ended last slice, so that events stamped after
    /// the local clock's `now` are not skipped.
    mutating func end(from start: Int64, now: Int64, until: Int64?) -> Int64? {
        if let known = dense, start >= known.from { dense = nil }
        if let end = fitted, end <= start { fitted = nil }
        let reach = fitted ?? dense.map { min(start + width, $0.from + $0.width) } ?? start + width
        fitted = nil
        if let until { return min(reach, until) }
        return reach < now ? reach : nil
    }

    /// The slice from `start` held more than the bound (`PollCycle.WalkOutcome.overflowed`).
    /// Returns where to probe below (`PollCycle.firstData`) when data was seen far above
    /// `start` over ground where nothing was found so far; over sparse ground the probes would
    /// find the sparse events, not the dense data's edge, and cost more than they save.
    mutating func overflowed(
        from start: Int64, width: Int64, dataFrom: Int64?, denseFrom: Int64?, fitsBefore: Int64?
    ) -> Int64? {
        self.width = width
        untouched = false
        if let denseFrom { dense = (denseFrom, width) }
        fitted = fitsBefore
        if let dataFrom, barren, dataFrom - start > 4 * width { return dataFrom }
        return nil
    }

    /// A bounded slice was walked and delivered, `kept` events of it, where `bound` events of
    /// the size seen fit the bounds: the next aims at half the bound, growing at most fourfold
    /// (sixteenfold over empty ground while the cycle found nothing yet).
    mutating func walked(kept: Int, bound: Int) {
        barren = kept == 0
        if kept > 0 { untouched = false }
        if kept < bound / 4 {
            let factor = kept == 0 ? (untouched ? 16 : 4) : min(4, max(1, bound / 2 / kept))
            width = min(width * Int64(factor), Self.maxWidth)
        }
    }
}
