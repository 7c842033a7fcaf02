import Foundation

/// Makes realistic events of every type in the catalog, from seeded randomness.
///
/// Payloads follow each type's shape; actors, projects and ids come from small pools so the
/// filters have something to match. A share of events (`trickyRate`) carries strings with
/// `"`, `\`, `]`, `|`, `=`, newlines and non-ASCII; `large` events carry ~100 KB.
public struct EventGenerator: Sendable {
    public static let types: [String] = catalog.map(\.type)
    /// The types a default query returns (not tenant-scoped).
    public static let organizationTypes = types.filter { !SimulatedEvent.isTenantType($0) }
    public static let tenantTypes = types.filter(SimulatedEvent.isTenantType)
    static let catalog: [(type: String, shape: Shape?)] = {
        guard let root = try? JSONSerialization.jsonObject(with: Data(eventCatalogJSON.utf8)) as? [String: Any],
            let list = root["event_types"] as? [[String: Any]]
        else { fatalError("the embedded event catalog is not valid JSON") }
        return list.map { ($0["type"] as? String ?? "unknown", Shape($0["payload"] as Any)) }
    }()

    /// A payload shape: `"string"` leaves, `[x]` arrays, `{}` free-form objects.
    indirect enum Shape: Sendable {
        case string
        case integer
        case boolean
        case freeform
        case list(Shape)
        case object([(String, Shape)])

        init?(_ any: Any) {
            switch any {
            case let text as String:
                self = text == "integer" ? .integer : text == "boolean" ? .boolean : .string
            case let list as [Any]:
                guard let first = list.first, let item = Shape(first) else { return nil }
                self = .list(item)
            case let object as [String: Any]:
                self =
                    object.isEmpty
                    ? .freeform
                    : .object(object.keys.sorted().compactMap { key in Shape(object[key]!).map { (key, $0) } })
            default: return nil
            }
        }
    }

    public static let trickyStrings = [
        #"He said "hi" \ back\slash ] bracket"#,
        "pipe|equals=sign ]] and \\= and \\|",
        "line one\nline two\r\n\ttabbed",
        "Zoë Ångström — 日本語 Ελληνικά 🚀",
        "}{\"key\": \"not a real member\"}[",
    ]

    var random: SeededRandom
    var counter = 0
    public var trickyRate: Double

    public init(seed: UInt64 = 1, trickyRate: Double = 0.05) {
        random = SeededRandom(seed: seed)
        self.trickyRate = trickyRate
    }

    static let users: [(id: String, email: String)] = (0..<20).map {
        ("user-\(String(format: "%06d", $0 * 7919 % 1_000_000))", "user\($0)@example.com")
    }
    static let serviceAccounts = (0..<5).map { "svc_acct_\(String(format: "%04d", $0 * 131))" }
    static let projects = (0..<8).map { ("proj_\(String(format: "%05d", $0 * 4241))", "Project \($0)") }

    mutating func pick<T>(_ items: [T]) -> T { items[Int(random.next() % UInt64(items.count))] }
    mutating func chance(_ p: Double) -> Bool { Double(random.next() % 1_000_000) / 1_000_000 < p }

    mutating func token(_ length: Int) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        return String((0..<length).map { _ in pick(alphabet) })
    }

    /// The next event; `type` nil picks one of the 145 at random.
    public mutating func make(
        type requested: String? = nil, at effectiveAt: Int64, tricky: Bool? = nil, large: Bool = false,
        visibleAt: Double = 0
    ) -> SimulatedEvent {
        counter += 1
        let type = requested ?? pick(Self.catalog).type
        let shape = Self.catalog.first { $0.type == type }?.shape
        let tricky = tricky ?? chance(trickyRate)
        let id = "audit_log-\(token(16))\(String(counter, radix: 36))"
        var members: [(String, JSONValue)] = [
            ("id", .string(id)), ("object", .string("organization.audit_log")), ("type", .string(type)),
            ("effective_at", .integer(effectiveAt)),
        ]
        if !SimulatedEvent.isTenantType(type), chance(0.6) {
            let project = pick(Self.projects)
            members.append(
                (
                    "project",
                    .object([
                        ("id", .string(project.0)), ("name", .string(tricky ? pick(Self.trickyStrings) : project.1)),
                    ])
                ))
        }
        members.append(("actor", actor(tricky: tricky)))
        if type != "login.succeeded" && type != "logout.succeeded" {
            var payload =
                shape.map { value($0, key: "", type: type, tricky: tricky) } ?? freeform(type: type, tricky: tricky)
            if large, case .object(var fields) = payload {
                fields.append(("description", .string(bigText(100 * 1024))))
                payload = .object(fields)
            }
            members.append((type, payload))
        } else if large {
            members.append(("details", .string(bigText(100 * 1024))))
        }
        guard let event = SimulatedEvent(value: .object(members), visibleAt: visibleAt) else {
            fatalError("generated event lacks id/type/effective_at")
        }
        return event
    }

    mutating func actor(tricky: Bool) -> JSONValue {
        let user = pick(Self.users)
        let userValue = JSONValue.object([("id", .string(user.id)), ("email", .string(user.email))])
        if chance(0.7) {
            let ip =
                chance(0.8)
                ? "203.0.113.\(random.next() % 254 + 1)" : "2001:db8::\(String(random.next() % 65535, radix: 16))"
            return .object([
                ("type", .string("session")),
                (
                    "session",
                    .object([
                        ("user", userValue), ("ip_address", .string(ip)),
                        (
                            "user_agent",
                            .string(tricky ? pick(Self.trickyStrings) : "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0")
                        ),
                        ("ja3", .string(token(32))), ("ja4", .string("t13d1516h2_\(token(12))")),
                        (
                            "ip_address_details",
                            .object([
                                ("country", .string("US")), ("city", .string(tricky ? "São Paulo" : "San Francisco")),
                                ("region", .string("California")), ("region_code", .string("CA")),
                                ("asn", .string("64496")), ("latitude", .string("37.77490")),
                                ("longitude", .string("-122.41940")),
                            ])
                        ),
                    ])
                ),
            ])
        }
        let serviceAccount = chance(0.4)
        return .object([
            ("type", .string("api_key")),
            (
                "api_key",
                .object([
                    ("id", .string("key_\(token(16))")),
                    ("type", .string(serviceAccount ? "service_account" : "user")),
                    serviceAccount
                        ? ("service_account", .object([("id", .string(pick(Self.serviceAccounts)))]))
                        : ("user", userValue),
                ])
            ),
        ])
    }

    mutating func value(_ shape: Shape, key: String, type: String, tricky: Bool) -> JSONValue {
        switch shape {
        case .integer: return .integer(Int64(random.next() % 10_000))
        case .boolean: return .bool(chance(0.5))
        case .freeform: return freeform(type: type, tricky: tricky)
        case .list(let item):
            return .array(
                (0..<(1 + Int(random.next() % 2))).map { _ in value(item, key: key, type: type, tricky: tricky) })
        case .object(let fields):
            return .object(fields.map { ($0.0, value($0.1, key: $0.0, type: type, tricky: tricky)) })
        case .string: return .string(string(for: key, type: type, tricky: tricky))
        }
    }

    mutating func string(for key: String, type: String, tricky: Bool) -> String {
        switch key {
        case "id":
            let prefix = type.split(separator: ".").first.map(String.init) ?? "obj"
            return "\(prefix)_\(token(12))"
        case "email": return pick(Self.users).email
        case "project_id": return pick(Self.projects).0
        case "name", "title", "description", "group_name", "role_name":
            return tricky ? pick(Self.trickyStrings) : "\(key) \(token(6))"
        case "role": return pick(["owner", "reader", "member"])
        case "scopes": return pick(["api.model.request", "api.audit_logs.read", "api.all"])
        default: return tricky && chance(0.5) ? pick(Self.trickyStrings) : token(10)
        }
    }

    mutating func freeform(type: String, tricky: Bool) -> JSONValue {
        .object([
            ("id", .string("\(type.split(separator: ".").dropFirst().first ?? "res")_\(token(10))")),
            (
                "details",
                .object([
                    ("note", .string(tricky ? pick(Self.trickyStrings) : "changed")),
                    ("tags", .array([.string("a"), .null, .integer(3)])),
                ])
            ),
        ])
    }

    mutating func bigText(_ size: Int) -> String {
        var text = ""
        text.reserveCapacity(size + 64)
        while text.utf8.count < size {
            text += token(60)
            text += chance(0.1) ? " \"quoted\" \\ é 日本 \n" : " "
        }
        return text
    }
}
