/// The API's filters, re-sent unchanged with every page of a walk.
public struct AuditLogFilters: Sendable, Hashable, Codable {
    public var eventTypes: [String] = []
    public var projectIDs: [String] = []
    public var actorIDs: [String] = []
    public var actorEmails: [String] = []
    public var resourceIDs: [String] = []

    public init(
        eventTypes: [String] = [], projectIDs: [String] = [], actorIDs: [String] = [],
        actorEmails: [String] = [], resourceIDs: [String] = []
    ) {
        self.eventTypes = eventTypes
        self.projectIDs = projectIDs
        self.actorIDs = actorIDs
        self.actorEmails = actorEmails
        self.resourceIDs = resourceIDs
    }

    /// Absent lists mean "no filter", so a hand-edited state file may leave them out.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func list(_ key: CodingKeys) throws -> [String] {
            try container.decodeIfPresent([String].self, forKey: key) ?? []
        }
        self.init(
            eventTypes: try list(.eventTypes), projectIDs: try list(.projectIDs), actorIDs: try list(.actorIDs),
            actorEmails: try list(.actorEmails), resourceIDs: try list(.resourceIDs))
    }

    enum CodingKeys: String, CodingKey {
        case eventTypes = "event_types", projectIDs = "project_ids", actorIDs = "actor_ids"
        case actorEmails = "actor_emails", resourceIDs = "resource_ids"
    }

    /// Every filter, by the name the API, `config.yaml` and the state file give it: the one
    /// list of filter names.
    public static let fields: [(name: String, values: WritableKeyPath<AuditLogFilters, [String]> & Sendable)] = [
        ("event_types", \.eventTypes), ("project_ids", \.projectIDs), ("actor_ids", \.actorIDs),
        ("actor_emails", \.actorEmails), ("resource_ids", \.resourceIDs),
    ]

    /// Each list sorted and without repeats: the API reads every filter as a set, so the order
    /// an operator writes them in must not make another source.
    public var normalized: AuditLogFilters {
        var copy = self
        for field in Self.fields { copy[keyPath: field.values] = Array(Set(self[keyPath: field.values])).sorted() }
        return copy
    }
}
