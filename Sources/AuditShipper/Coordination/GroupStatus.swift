/// A group as its database holds it, for `state show` and `check`: the lease and the shared
/// positions.
public struct GroupStatus: Sendable {
    public var group: String
    /// The member that holds or last held the lease (host, process and a random part); nil
    /// before the first.
    public var holder: String?
    public var term: Int64
    /// Seconds since the holder last renewed; nil before the first.
    public var renewedAgo: Double?
    /// Seconds until the lease expires, by the database's clock (negative: expired).
    public var expiresIn: Double?
    public var positions: [String: SinkPosition]

    /// Whether a member holds the lease now.
    public var held: Bool { holder != nil && (expiresIn ?? -1) > 0 }
}
