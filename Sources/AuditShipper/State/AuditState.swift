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
