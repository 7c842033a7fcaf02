/// `state show` and the state line of `check`.
enum StateReport {
    static func read(path: String) throws -> AuditState? {
        let store = try StateStore(path: path, lock: false)
        return try store.load()
    }

    static func describeBriefly(path: String, configuration: Configuration) throws -> String {
        guard let state = try read(path: path) else { return "no state yet at \(path) (first run)" }
        guard state.source == configuration.stateSource else {
            throw StateError.otherSource(path: path, recorded: state.source, configured: configuration.stateSource)
        }
        let positions = state.sharedPosition.map { [$0] } ?? Array(state.positions.values)
        let oldest = positions.map(\.completeBefore).min() ?? state.startAt
        return "ok (\(path), every sink complete before \(TimeSpec.format(oldest)))"
    }

    /// The group's part: who holds the lease, and the shared positions as the group has them.
    static func describe(_ status: GroupStatus, configuration: Configuration, now: Int64) -> String {
        var lines = [
            "coordination group: \(status.group)",
            "  lease holder:    "
                + (status.holder.map { status.held ? $0 : "none (\($0)'s lease expired)" } ?? "none yet"),
            "  term:            \(status.term)",
            "  renewed:         " + (status.renewedAgo.map { String(format: "%.1fs ago", $0) } ?? "never"),
            "  expires:         "
                + (status.expiresIn.map { $0 > 0 ? String(format: "in %.1fs", $0) : "expired" } ?? "never held"),
        ]
        let shared = configuration.sinks.filter(\.isShared).map(\.name)
        for name in shared {
            guard let position = status.positions[name] else {
                lines.append("shared sink \(name): no position in the group yet")
                continue
            }
            lines += [
                "shared sink \(name) (the group's position):",
                "  complete before: \(TimeSpec.format(position.completeBefore)) (\(position.completeBefore)), lag \(max(0, now - position.completeBefore))s",
                "  recent ids:      \(position.recent.count) since \(TimeSpec.format(position.recentSince))",
                "  delivered:       \(position.delivered) events",
                "  last error:      "
                    + (position.lastError.map { "\($0) (at \(TimeSpec.format(position.lastErrorAt ?? 0)))" } ?? "none"),
            ]
        }
        return lines.joined(separator: "\n")
    }

    static func describe(path: String, configuration: Configuration, now: Int64) throws -> String {
        guard let state = try read(path: path) else {
            return "state file:      \(path)\nstatus:          none yet: the next run is a first run (poll.start_at)"
        }
        var lines = [
            "state file:      \(path)",
            "version:         \(state.version)"
                + (state.version < AuditState.currentVersion
                    ? " (rewritten as version \(AuditState.currentVersion) at the next save)" : ""),
            "source:          \(state.source)",
            "matches config:  \(state.source == configuration.stateSource ? "yes" : "NO: run 'openai-auditd state reset' or restore the old configuration")",
            "start at:        \(TimeSpec.format(state.startAt)) (\(state.startAt))",
            "updated:         \(TimeSpec.format(state.updatedAt))",
        ]
        let configured = configuration.sinks.map(\.name)
        var positions = state.positions.sorted { $0.key < $1.key }
        if let shared = state.sharedPosition { positions = configured.map { ($0, shared) } }
        for (name, position) in positions {
            lines.append(
                "sink \(name)" + (configured.contains(name) ? ":" : " (no longer configured: dropped at the next run):")
            )
            let newest = position.recent.values.max()
            lines += [
                "  complete before: \(TimeSpec.format(position.completeBefore)) (\(position.completeBefore)), lag \(max(0, now - position.completeBefore))s",
                "  recent ids:      \(position.recent.count) since \(TimeSpec.format(position.recentSince))"
                    + (newest.map { ", newest \(TimeSpec.format($0))" } ?? ""),
                "  delivered:       \(position.delivered) events over this state's life",
                "  last error:      "
                    + (position.lastError.map { "\($0) (at \(TimeSpec.format(position.lastErrorAt ?? 0)))" } ?? "none"),
            ]
        }
        for name in configured where !positions.contains(where: { $0.0 == name }) {
            lines.append("sink \(name): no position yet (starts at the next run)")
        }
        return lines.joined(separator: "\n")
    }
}
