/// One audit log item: its own bytes, forwarded unchanged, and the fields the cycle needs.
///
/// The event is never re-encoded: `json` is the item exactly as the API sent it, with only
/// insignificant whitespace removed, so unknown fields and types reach every sink whole.
/// A class: an event is passed through pages, slices, sorts and batches, and one reference
/// count per copy costs less than three (perf).
public final class AuditEvent: Sendable {
    public let id: String
    /// `id`, hashed once for the cycle's many lookups.
    public let hashedID: HashedID
    public let type: String
    /// Unix seconds (the API's resolution is one second).
    public let effectiveAt: Int64
    /// Compact JSON of the whole item, UTF-8, no newline.
    public let json: [UInt8]

    public init(id: String, type: String, effectiveAt: Int64, json: [UInt8]) {
        self.id = id
        hashedID = HashedID(id)
        self.type = type
        self.effectiveAt = effectiveAt
        self.json = json
    }

    public var jsonString: String { String(decoding: json, as: UTF8.self) }
}

/// One page of `GET /organization/audit_logs`.
public struct AuditPage: Sendable {
    public var events: [AuditEvent]
    public var hasMore: Bool
    public var firstID: String?
    public var lastID: String?
    /// The server's clock when it answered (the response's `Date`, Unix seconds), if it said.
    public var serverTime: Int64?

    public init(
        events: [AuditEvent], hasMore: Bool, firstID: String? = nil, lastID: String? = nil, serverTime: Int64? = nil
    ) {
        self.events = events
        self.hasMore = hasMore
        self.firstID = firstID
        self.lastID = lastID
        self.serverTime = serverTime
    }
}
