/// Where the daemon stands, kept in one small JSON file between cycles and restarts: the
/// source it reads and, for each sink, its own position (`SinkPosition`).
///
/// Each sink moves at its own pace: a sink that fails holds only its own position, and the
/// others go on. Version 1 files (one position shared by every sink) are read and become
/// the current version at the next write.
public struct AuditState: Sendable, Equatable {
    /// 3: the file may be followed by `<path>.updates` (`StateUpdateLog`), which an earlier
    /// version would not read; the positions are otherwise those of version 2.
    public static let currentVersion = 3

    public var version: Int
    /// What this state was built from; another base URL, organization or filter set would
    /// make the positions meaningless, so it is refused until `state reset`.
    public var source: StateSource
    /// The first run's `start_at` (or `state reset --to`): where sinks of a new state start.
    public var startAt: Int64
    /// Sink name → its position.
    public var positions: [String: SinkPosition]
    /// Unix seconds of the last write (informational).
    public var updatedAt: Int64
    /// A version 1 file's single position, until the configured sinks take it over.
    public internal(set) var sharedPosition: SinkPosition?

    public init(source: StateSource, startAt: Int64, now: Int64) {
        self.version = Self.currentVersion
        self.source = source
        self.startAt = startAt
        self.positions = [:]
        self.updatedAt = now
    }

    /// What `reconcile` changed, for the log.
    public struct Changes: Sendable, Equatable {
        public var added: [String] = []
        public var removed: [String] = []
        /// New name → the old one whose position it took (a default name that changed with
        /// the sink's URL or path).
        public var renamed: [String: String] = [:]
        public var isEmpty: Bool { added.isEmpty && removed.isEmpty && renamed.isEmpty }
    }

    /// Gives every sink in `names` a position and drops the positions of sinks no longer
    /// configured. A new sink starts at its own `start_at` if it has one (`starts`), else
    /// where the sinks already here are (the furthest one: a new sink is not flooded with
    /// history), else, in a new or version 1 state, at the state's start or shared position.
    ///
    /// `kinds` names the sinks known by a default name that carries their URL or path (name →
    /// `syslog ` or `file `): pointed elsewhere, such a sink is still the same sink, so when it
    /// is the only new one of its kind and one position of that kind is left without a sink,
    /// it takes that position (a lagging collector moved to a backup keeps its backlog).
    public mutating func reconcile(
        sinks names: [String], starts: [String: Int64], kinds: [String: String] = [:]
    ) -> Changes {
        var changes = Changes()
        for kind in Set(kinds.values) {
            let new = names.filter { kinds[$0] == kind && positions[$0] == nil && starts[$0] == nil }
            let orphans = positions.keys.filter { $0.hasPrefix(kind) && !names.contains($0) }
            guard new.count == 1, orphans.count == 1 else { continue }
            positions[new[0]] = positions.removeValue(forKey: orphans[0])
            changes.renamed[new[0]] = orphans[0]
        }
        let leader = positions.values.max { $0.completeBefore < $1.completeBefore }
        for name in names where positions[name] == nil {
            var position: SinkPosition
            if let start = starts[name] {
                position = SinkPosition(start: start)
            } else if let shared = sharedPosition ?? leader {
                position = shared
                position.lastError = nil
                position.lastErrorAt = nil
                if sharedPosition == nil { position.delivered = 0 }
            } else {
                position = SinkPosition(start: startAt)
            }
            positions[name] = position
            changes.added.append(name)
        }
        for name in positions.keys.sorted() where !names.contains(name) {
            positions[name] = nil
            changes.removed.append(name)
        }
        sharedPosition = nil
        version = Self.currentVersion
        return changes
    }

    /// The file's JSON, written by hand: while a slice is caught up `recent` holds up to
    /// `max_window_events` ids per sink, which `JSONEncoder` would sort and box one by one.
    /// `generation` names this writing, for the update log that follows it.
    public func encoded(generation: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + positions.values.reduce(0) { $0 + 160 + $1.held.count * 48 })
        func raw(_ text: String) { out.append(contentsOf: text.utf8) }
        func string(_ text: String?) {
            if let text { JSONString.append(text, to: &out) } else { raw("null") }
        }
        raw("{\"version\":\(Self.currentVersion),\"generation\":")
        string(generation)
        raw(",\"source\":{\"base_url\":")
        string(source.baseURL)
        raw(",\"organization\":")
        string(source.organization)
        raw(",\"filters\":{")
        for (index, field) in AuditLogFilters.fields.enumerated() {
            raw(index == 0 ? "\"\(field.name)\":[" : ",\"\(field.name)\":[")
            for (offset, value) in source.filters[keyPath: field.values].enumerated() {
                if offset > 0 { raw(",") }
                string(value)
            }
            raw("]")
        }
        raw("}},\"start_at\":\(startAt),\"updated_at\":\(updatedAt),\"sinks\":{")
        for (index, (name, position)) in positions.sorted(by: { $0.key < $1.key }).enumerated() {
            if index > 0 { raw(",") }
            string(name)
            position.appendWhole(to: &out)
        }
        raw("}}\n")
        return out
    }
}

extension AuditState: Decodable {
    /// Reads versions 2 and 3 (the same positions), and version 1 (one shared position: `complete_before`, `recent`,
    /// `delivered` at the top level). Anything else is refused by `StateStore` before this.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        version = try container.decode(Int.self, forKey: .version)
        source = try container.decode(StateSource.self, forKey: .source)
        startAt = try container.decode(Int64.self, forKey: .startAt)
        updatedAt = try container.decode(Int64.self, forKey: .updatedAt)
        if version == 1 {
            // Version 1 pruned `recent` with the lookback of its day and windows never started
            // before `start_at`; as the floor, `start_at` keeps that behaviour exactly.
            var shared = SinkPosition(start: startAt)
            shared.completeBefore = try container.decode(Int64.self, forKey: .completeBefore)
            shared.recent = try container.decode([String: Int64].self, forKey: .recent)
            shared.delivered = try container.decode(Int64.self, forKey: .delivered)
            positions = [:]
            sharedPosition = shared
        } else {
            positions = try container.decode([String: SinkPosition].self, forKey: .sinks)
        }
    }

    /// The positions are on disk: nothing of them is left to append.
    public mutating func markWritten() {
        for name in positions.keys { positions[name]!.markWritten() }
    }

    enum CodingKeys: String, CodingKey {
        case version, source, recent, delivered, sinks
        case startAt = "start_at", completeBefore = "complete_before", updatedAt = "updated_at"
    }
}
