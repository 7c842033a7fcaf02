/// The parameters of `GET /organization/audit_logs`, validated as the API does.
public struct ListQuery: Sendable, Equatable {
    public var greaterThan: Int64?
    public var greaterOrEqual: Int64?
    public var lessThan: Int64?
    public var lessOrEqual: Int64?
    public var eventTypes: Set<String> = []
    public var projectIDs: Set<String> = []
    public var actorIDs: Set<String> = []
    public var actorEmails: Set<String> = []
    public var resourceIDs: Set<String> = []
    public var tenantOnly = false
    public var limit = 20
    public var after: String?
    public var before: String?

    public init() {}

    /// Parses a raw query string; a 400 message for anything the API would refuse.
    public static func parse(_ query: String) throws(APIFailure) -> ListQuery {
        var result = ListQuery()
        for item in query.split(separator: "&") where !item.isEmpty {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = percentDecode(String(parts[0]))
            let value = parts.count > 1 ? percentDecode(String(parts[1])) : ""
            func integer() throws(APIFailure) -> Int64 {
                guard let number = Int64(value) else {
                    throw .badRequest("Invalid value for '\(name)': expected an integer, got '\(value)'.", param: name)
                }
                return number
            }
            switch name {
            case "effective_at[gt]": result.greaterThan = try integer()
            case "effective_at[gte]": result.greaterOrEqual = try integer()
            case "effective_at[lt]": result.lessThan = try integer()
            case "effective_at[lte]": result.lessOrEqual = try integer()
            case "event_types[]":
                guard EventGenerator.types.contains(value) else {
                    throw .badRequest(
                        "Invalid value for 'event_types': '\(value)' is not a known event type.", param: name)
                }
                result.eventTypes.insert(value)
            case "project_ids[]": result.projectIDs.insert(value)
            case "actor_ids[]": result.actorIDs.insert(value)
            case "actor_emails[]": result.actorEmails.insert(value)
            case "resource_ids[]": result.resourceIDs.insert(value)
            case "tenant_only":
                guard value == "true" || value == "false" else {
                    throw .badRequest("Invalid value for 'tenant_only': expected a boolean.", param: name)
                }
                result.tenantOnly = value == "true"
            case "limit":
                let limit = try integer()
                guard (1...100).contains(limit) else {
                    throw .badRequest(
                        "Invalid 'limit': integer below minimum value or above maximum value. Expected a value between 1 and 100, but got \(limit) instead.",
                        param: "limit")
                }
                result.limit = Int(limit)
            case "after": result.after = value
            case "before": result.before = value
            default:
                throw .badRequest("Unrecognized request argument supplied: \(name)", param: name)
            }
        }
        return result
    }

    static func percentDecode(_ text: String) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "+") {
                bytes.append(0x20)
            } else if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    func matches(_ event: SimulatedEvent) -> Bool {
        if event.isTenant != tenantOnly { return false }
        if !eventTypes.isEmpty, !eventTypes.contains(event.type) { return false }
        if !projectIDs.isEmpty, !(event.projectID.map(projectIDs.contains) ?? false) { return false }
        if !actorIDs.isEmpty, !event.actorIDs.contains(where: actorIDs.contains) { return false }
        if !actorEmails.isEmpty, !(event.actorEmail.map(actorEmails.contains) ?? false) { return false }
        if !resourceIDs.isEmpty, !(event.resourceID.map(resourceIDs.contains) ?? false) { return false }
        return true
    }

    /// The inclusive `effective_at` bounds.
    var bounds: (low: Int64, high: Int64) {
        var low = Int64.min
        var high = Int64.max
        if let v = greaterThan { low = max(low, v + 1) }
        if let v = greaterOrEqual { low = max(low, v) }
        if let v = lessThan { high = min(high, v - 1) }
        if let v = lessOrEqual { high = min(high, v) }
        return (low, high)
    }
}

/// An error response the simulator sends, in the API's shape.
public struct APIFailure: Error, Sendable {
    public let status: Int
    public let message: String
    public let type: String
    public let param: String?
    public let code: String?

    public static func badRequest(_ message: String, param: String?) -> APIFailure {
        APIFailure(status: 400, message: message, type: "invalid_request_error", param: param, code: nil)
    }

    public var body: [UInt8] {
        JSONValue.object([
            (
                "error",
                .object([
                    ("message", .string(message)), ("type", .string(type)),
                    ("param", param.map(JSONValue.string) ?? .null),
                    ("code", code.map(JSONValue.string) ?? .null),
                ])
            )
        ]).bytes
    }
}
