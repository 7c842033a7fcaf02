import Foundation

/// The parts of an event the formats name: actor, project, the payload's target.
///
/// Decoded on demand from the event's own bytes (the cycle never needs them). Every part is
/// optional and tolerant: a field of an unexpected type is left out, never an error, since an
/// event must be delivered whatever shape the API gives it.
public struct EventDetails: Sendable, Equatable {
    /// `session` or `api_key`.
    public var actorType: String?
    /// The user id, or the service account id for a service account's key.
    public var actorID: String?
    public var actorEmail: String?
    public var actorIP: String?
    public var apiKeyID: String?
    public var serviceAccountID: String?
    public var projectID: String?
    public var projectName: String?
    /// The payload's `id`: the object the event is about.
    public var resourceID: String?
    /// A readable name for the target (a name, an email and role, an error), if the payload has one.
    public var resourceLabel: String?

    public init(_ event: AuditEvent) {
        guard let envelope = try? JSONDecoder().decode(Envelope.self, from: event.withJSON { Data($0) }) else { return }
        if let actor = envelope.actor {
            actorType = actor.type
            if let session = actor.session {
                actorID = session.user?.id
                actorEmail = session.user?.email
                actorIP = session.ip_address
            }
            if let key = actor.api_key {
                apiKeyID = key.id
                serviceAccountID = key.service_account?.id
                actorID = key.user?.id ?? key.service_account?.id
                actorEmail = key.user?.email
            }
        }
        projectID = envelope.project?.id
        projectName = envelope.project?.name
        if let payload = envelope.payload {
            resourceID = payload.id
            resourceLabel = payload.label
        }
    }

    public init() {}

    struct Envelope: Decodable {
        struct Actor: Decodable {
            var type: String?
            var session: Session?
            var api_key: APIKey?
        }
        struct Session: Decodable {
            var user: User?
            var ip_address: String?
        }
        struct APIKey: Decodable {
            var id: String?
            var user: User?
            var service_account: Identified?
        }
        struct User: Decodable {
            var id: String?
            var email: String?
        }
        struct Identified: Decodable { var id: String? }
        struct Project: Decodable {
            var id: String?
            var name: String?
        }
        struct Payload: Decodable {
            struct Data: Decodable {
                var email: String?
                var role: String?
                var name: String?
                var title: String?
                var group_name: String?
                var role_name: String?
            }
            var id: String?
            var name: String?
            var email: String?
            var title: String?
            var role_name: String?
            var error_code: String?
            var error_message: String?
            var data: Data?

            /// `bob@example.com as reader`, `Production`, `invalid_password: ...`.
            var label: String? {
                if let email = data?.email ?? email {
                    return data?.role.map { "\(email) as \($0)" } ?? email
                }
                if let name = name ?? title ?? role_name ?? data?.name ?? data?.title ?? data?.group_name
                    ?? data?.role_name
                {
                    return name
                }
                if let error = error_message ?? error_code { return error }
                return nil
            }
        }

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        var actor: Actor?
        var project: Project?
        var payload: Payload?

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: Key.self)
            actor = try? container.decodeIfPresent(Actor.self, forKey: Key(stringValue: "actor"))
            project = try? container.decodeIfPresent(Project.self, forKey: Key(stringValue: "project"))
            if let type = try? container.decode(String.self, forKey: Key(stringValue: "type")) {
                payload = try? container.decodeIfPresent(Payload.self, forKey: Key(stringValue: type))
            }
        }
    }
}
