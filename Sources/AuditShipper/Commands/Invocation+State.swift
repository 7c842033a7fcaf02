extension Invocation {
    /// `state show`: where the daemon stands, read without the lock (safe while it runs).
    public func showState(now: Int64) async throws -> String {
        let local = try StateReport.describe(path: statePath, configuration: configuration, now: now)
        // The group's part needs the database only, not the admin key.
        guard let coordination = try groupCoordination() else { return local }
        do {
            let status = try await coordination.status()
            await coordination.resign()
            return local + "\n" + StateReport.describe(status, configuration: configuration, now: now)
        } catch {
            await coordination.resign()
            throw error
        }
    }

    /// The group's coordination, to read or import without running; it never takes the lease.
    func groupCoordination() throws -> PostgresCoordination? {
        try PostgresCoordination.make(configuration: configuration, environment: environment, logger: logger)
    }

    /// `state import`: the positions this host's state file holds for the shared sinks, into
    /// the group, for each sink the group has none for yet (a team moving from one host to
    /// two). Returns what was done, one line each.
    public func importState() async throws -> [String] {
        guard let coordination = try groupCoordination() else {
            throw ConfigurationError.invalid(
                origin: "configuration", path: "coordination", message: "is not set: there is no group to import into")
        }
        guard let state = try StateReport.read(path: statePath) else {
            return ["no state file at \(statePath): nothing to import"]
        }
        guard state.source == configuration.stateSource else {
            throw StateError.otherSource(path: statePath, recorded: state.source, configured: configuration.stateSource)
        }
        let shared = Set(configuration.sinks.filter(\.isShared).map(\.name))
        let positions = state.positions.filter { shared.contains($0.key) }
        let imported: [String]
        do {
            imported = try await coordination.importPositions(positions)
        } catch {
            await coordination.resign()
            throw error
        }
        await coordination.resign()
        var lines = imported.map { "sink \($0): its position is the group's now (\(coordination.group))" }
        for name in positions.keys.sorted() where !imported.contains(name) {
            lines.append("sink \(name): the group has a position already; it is kept")
        }
        if positions.isEmpty { lines.append("the state file holds no position of a shared sink") }
        return lines
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
