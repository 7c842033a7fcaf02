/// The upstream a state belongs to.
public struct StateSource: Codable, Sendable, Equatable, CustomStringConvertible {
    public var baseURL: String
    public var organization: String?
    public var filters: AuditLogFilters

    /// Filters are kept normalized (sorted, without repeats): written in another order they
    /// are the same source.
    public init(baseURL: String, organization: String?, filters: AuditLogFilters) {
        self.baseURL = baseURL
        self.organization = organization
        self.filters = filters.normalized
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            baseURL: try container.decode(String.self, forKey: .baseURL),
            organization: try container.decodeIfPresent(String.self, forKey: .organization),
            filters: try container.decode(AuditLogFilters.self, forKey: .filters))
    }

    public var description: String {
        var parts = ["base_url \(baseURL)"]
        if let organization { parts.append("organization \(organization)") }
        for field in AuditLogFilters.fields where !filters[keyPath: field.values].isEmpty {
            parts.append("\(field.name) [\(filters[keyPath: field.values].joined(separator: ", "))]")
        }
        return parts.joined(separator: ", ")
    }

    enum CodingKeys: String, CodingKey {
        case baseURL = "base_url", organization, filters
    }
}
