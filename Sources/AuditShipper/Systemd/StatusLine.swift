/// `STATUS=` lines.
public enum StatusLine {
    /// `READY=1`'s: where delivery starts, and which sinks are down.
    public static func started(_ state: AuditState, lookback: Int64, failing: [String]) -> String {
        let start = state.positions.values.map { $0.windowStart(lookback: lookback) }.min()
        var text = start.map { "started, delivering events from \(TimeSpec.format($0))" } ?? "started, first run"
        if !failing.isEmpty { text += "; not reachable, will catch up: \(failing.joined(separator: ", "))" }
        return text
    }

    /// `delivered 12 events, lag 41s, next poll in 60s`, and any sink that failed.
    public static func after(_ report: CycleReport, state: AuditState, now: Int64, interval: Duration) -> String {
        var parts = ["delivered \(report.delivered) event\(report.delivered == 1 ? "" : "s")"]
        let newest = report.newestDelivered ?? state.positions.values.compactMap { $0.recent.values.max() }.max()
        if let newest { parts.append("lag \(max(0, now - newest))s") }
        parts.append("next poll in \(interval.components.seconds)s")
        var text = parts.joined(separator: ", ")
        if !report.sinkFailures.isEmpty {
            let names = report.sinkFailures.keys.sorted()
            text += "; failing: \(names.joined(separator: ", ")) (\(report.sinkFailures[names[0]]!.prefix(200)))"
        }
        return text
    }

    public static func failed(_ error: String, interval: Duration) -> String {
        "last poll failed, retrying in \(interval.components.seconds)s: \(error.prefix(300))"
    }
}
