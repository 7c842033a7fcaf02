/// The daemon's position, kept in one small JSON file between cycles and restarts.
///
/// Invariant: every event visible upstream with `effective_at < completeBefore` has been
/// delivered, and `recent` holds the ids delivered at or after `completeBefore - lookback`,
/// so the lookback re-read of every cycle can drop what was already sent.
public struct AuditState: Codable, Sendable, Equatable {
    public static let currentVersion = 1

    public var version: Int
    /// What this state was built from; another base URL, organization or filter set would
    /// make `completeBefore` meaningless, so it is refused until `state reset`.
    public var source: StateSource
    /// The first run's `start_at`: no window ever starts before it.
    public var startAt: Int64
    public var completeBefore: Int64
    /// Delivered id → its `effective_at`.
    public var recent: [String: Int64]
    /// Events delivered over this state's life (informational).
    public var delivered: Int64
    /// Unix seconds of the last write (informational).
    public var updatedAt: Int64

    public init(source: StateSource, startAt: Int64, now: Int64) {
        self.version = Self.currentVersion
        self.source = source
        self.startAt = startAt
        self.completeBefore = startAt
        self.recent = [:]
        self.delivered = 0
        self.updatedAt = now
    }

    /// Where the next window starts: `lookback` before `completeBefore`, never before `startAt`.
    public func windowStart(lookback: Int64) -> Int64 {
        max(startAt, completeBefore - lookback)
    }

    /// Forgets ids that no window can reach again.
    public mutating func pruneRecent(lookback: Int64) {
        let floor = completeBefore - lookback
        recent = recent.filter { $0.value >= floor }
    }

    /// The file's JSON, written by hand: it is written after every batch, and while a slice
    /// is caught up `recent` holds up to `max_window_events` ids, which `JSONEncoder` would
    /// sort and box one by one.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + recent.count * 48)
        func string(_ text: String) {
            out.append(0x22)
            for byte in text.utf8 {
                switch byte {
                case 0x22, 0x5C: out.append(contentsOf: [0x5C, byte])
                case 0..<0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    out.append(contentsOf: [
                        0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 15)],
                    ])
                default: out.append(byte)
                }
            }
            out.append(0x22)
        }
        func strings(_ list: [String]) {
            out.append(UInt8(ascii: "["))
            for (index, item) in list.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                string(item)
            }
            out.append(UInt8(ascii: "]"))
        }
        func raw(_ text: String) { out.append(contentsOf: text.utf8) }
        raw("{\"version\":\(version),\"source\":{\"base_url\":")
        string(source.baseURL)
        raw(",\"organization\":")
        if let organization = source.organization { string(organization) } else { raw("null") }
        raw(",\"filters\":{\"event_types\":")
        strings(source.filters.eventTypes)
        raw(",\"project_ids\":")
        strings(source.filters.projectIDs)
        raw(",\"actor_ids\":")
        strings(source.filters.actorIDs)
        raw(",\"actor_emails\":")
        strings(source.filters.actorEmails)
        raw(",\"resource_ids\":")
        strings(source.filters.resourceIDs)
        raw("}},\"start_at\":\(startAt),\"complete_before\":\(completeBefore),\"delivered\":\(delivered)")
        raw(",\"updated_at\":\(updatedAt),\"recent\":{")
        var first = true
        for (id, effectiveAt) in recent {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            string(id)
            raw(":\(effectiveAt)")
        }
        raw("}}\n")
        return out
    }

    enum CodingKeys: String, CodingKey {
        case version, source, recent, delivered
        case startAt = "start_at", completeBefore = "complete_before", updatedAt = "updated_at"
    }
}

/// The upstream a state belongs to.
public struct StateSource: Codable, Sendable, Equatable, CustomStringConvertible {
    public var baseURL: String
    public var organization: String?
    public var filters: AuditLogFilters

    public init(baseURL: String, organization: String?, filters: AuditLogFilters) {
        self.baseURL = baseURL
        self.organization = organization
        self.filters = filters
    }

    public var description: String {
        var parts = ["base_url \(baseURL)"]
        if let organization { parts.append("organization \(organization)") }
        for (name, values) in [
            ("event_types", filters.eventTypes), ("project_ids", filters.projectIDs),
            ("actor_ids", filters.actorIDs), ("actor_emails", filters.actorEmails),
            ("resource_ids", filters.resourceIDs),
        ] where !values.isEmpty {
            parts.append("\(name) [\(values.joined(separator: ", "))]")
        }
        return parts.joined(separator: ", ")
    }

    enum CodingKeys: String, CodingKey {
        case baseURL = "base_url", organization, filters
    }
}
