/// How densely a slice's kept events lie, overall and on the page read last (events
/// outside the slice, such as odd timestamps, are left out).
struct SliceDensity {
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

    /// `kept` plus what the rest of the slice would hold at the local density.
    func projected(kept: Int) -> Double {
        guard let local else { return 0 }
        return Double(kept) + local * Double(remaining)
    }

    /// A width that should hold about `target` events at the local density (the overall
    /// one without it): at most half of `width`, so the next try narrows; one second at least.
    func width(holding target: Int, within width: Int64) -> Int64 {
        let rate = local ?? (count > 0 ? Double(count) / Double(newest - oldest + 1) : 0)
        guard rate > 0 else { return max(1, width / 2) }
        return max(1, Int64(min(Double(target) / rate, Double(width / 2))))
    }
}
