/// One event as the simulator stores it: served bytes plus what the filters look at.
public struct SimulatedEvent: Sendable {
    public let id: String
    public let type: String
    public let effectiveAt: Int64
    public let projectID: String?
    /// User, service account and API key ids of the actor: `actor_ids[]` matches any.
    public let actorIDs: [String]
    public let actorEmail: String?
    /// The payload's `id`, matched by `resource_ids[]`.
    public let resourceID: String?
    /// Returned only with `tenant_only=true`.
    public let isTenant: Bool
    /// Unix time from which the event is listed (late arrival); 0 for at once.
    public var visibleAt: Double
    /// The item as served.
    public let json: [UInt8]
    var sequence = 0

    public init(
        id: String, type: String, effectiveAt: Int64, projectID: String?, actorIDs: [String], actorEmail: String?,
        resourceID: String?, isTenant: Bool, visibleAt: Double = 0, json: [UInt8]
    ) {
        self.id = id
        self.type = type
        self.effectiveAt = effectiveAt
        self.projectID = projectID
        self.actorIDs = actorIDs
        self.actorEmail = actorEmail
        self.resourceID = resourceID
        self.isTenant = isTenant
        self.visibleAt = visibleAt
        self.json = json
    }

    /// `tenant.*` and the resource role bindings are tenant-scoped (API.md).
    public static func isTenantType(_ type: String) -> Bool {
        type.hasPrefix("tenant.") || type == "role.bound_to_resource" || type == "role.unbound_from_resource"
    }

    /// Reads the fields the filters need from an event given as a JSON value.
    public init?(value: JSONValue, visibleAt: Double = 0) {
        guard let id = value["id"]?.stringValue, let type = value["type"]?.stringValue,
            case .integer(let at) = value["effective_at"] ?? .null
        else { return nil }
        let actor = value["actor"]
        let session = actor?["session"]
        let apiKey = actor?["api_key"]
        let ids = [
            session?["user"]?["id"], apiKey?["id"], apiKey?["user"]?["id"], apiKey?["service_account"]?["id"],
        ].compactMap { $0?.stringValue }
        let email = session?["user"]?["email"]?.stringValue ?? apiKey?["user"]?["email"]?.stringValue
        self.init(
            id: id, type: type, effectiveAt: at, projectID: value["project"]?["id"]?.stringValue, actorIDs: ids,
            actorEmail: email, resourceID: value[type]?["id"]?.stringValue, isTenant: Self.isTenantType(type),
            visibleAt: visibleAt,
            json: {
                var out: [UInt8] = []; value.write(into: &out, spaced: true); return out
            }())
    }
}
