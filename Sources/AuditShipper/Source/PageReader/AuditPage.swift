/// One page of `GET /organization/audit_logs`.
public struct AuditPage: Sendable {
    public var events: [AuditEvent]
    public var hasMore: Bool
    public var firstID: String?
    public var lastID: String?
    /// The server's clock when it answered (the response's `Date`, Unix seconds), if it said.
    public var serverTime: Int64?
    /// Items of `data` that are JSON but no readable event, in page order (not in `events`).
    public var unreadable: [UnreadableItem] = []

    /// The id of the page's last item, readable or not: where the next page continues when
    /// the server sends no `last_id`.
    public var lastListedID: String? {
        if let last = unreadable.last, last.index == events.count + unreadable.count - 1, let id = last.id { return id }
        return events.last?.id
    }

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
