extension Invocation {
    /// `state show`: where the daemon stands, read without the lock (safe while it runs).
    public func showState(now: Int64) throws -> String {
        try StateReport.describe(path: statePath, configuration: configuration, now: now)
    }

    /// `state reset`: the old file (corrupt or not) is set aside for inspection; without `to`
    /// the next run is a first run (`poll.start_at`), with it every sink resumes from `to`.
    /// Returns what was done, one line each.
    public func resetState(to time: Int64?, now: Int64) throws -> [String] {
        let store = try StateStore(path: statePath)
        var lines: [String] = []
        if let aside = try store.setAside(now: now) { lines.append("the previous state file is kept as \(aside)") }
        if let time {
            try store.save(AuditState(source: configuration.stateSource, startAt: time, now: now))
            lines.append("state \(statePath) reset: the next run delivers events from \(TimeSpec.format(time)) on")
        } else {
            lines.append("state \(statePath) removed: the next run is a first run (poll.start_at)")
        }
        return lines
    }
}
