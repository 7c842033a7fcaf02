/// What the cycle asks of a group's coordination: whether this member leads, and a write of
/// the shared sinks' positions that holds only while it does. `PostgresCoordination` is the
/// one in production; tests play members with a fake.
///
/// The invariant: a member delivers to a shared sink only while `holds` is true, and each
/// shared position it writes is fenced by its term (`record`), so two members never both
/// move one sink's position, and a member that lost the lease learns it at its next write at
/// the latest.
public protocol Coordination: Sendable {
    /// Renews this member's lease, or takes it when it is free (expired, or never held).
    func lead() async -> Leadership
    /// Whether this member's lease is still its own by this machine's monotonic clock: false
    /// from the moment `lease` has passed since the last renewal that succeeded was sent, so a
    /// member that was frozen or cut off knows it without asking.
    var holds: Bool { get }
    /// A standby keeps asking for the lease on its own between cycles (a member busy with a
    /// long catch-up of its local sinks would otherwise take over only when that cycle ends):
    /// true from the moment it took the lease until the next `lead` begins the term. The
    /// cycle ends at its next slice when it sees it, and the next one starts at once.
    var tookLease: Bool { get }
    /// Writes the shared sinks' positions, in one transaction with a renewal that succeeds
    /// only if the lease is still this member's term. Renews the lease.
    func record(_ positions: [String: SinkPosition]) async -> Recording
    /// Gives the lease up (at shutdown), so another member need not wait for it to expire.
    func resign() async
}

/// What `Coordination.lead` found.
public enum Leadership: Sendable, Equatable {
    /// This member holds the lease, in `term`. At a new term, `positions` are the group's
    /// shared positions, read from the database (never from memory: a new holder with its
    /// own idea of what was sent is how events are sent twice); nil while the term goes on.
    case leads(term: Int64, positions: [String: SinkPosition]?)
    /// Another member holds the lease, or the database cannot be reached: in words; and the
    /// group's shared positions as its holder last wrote them (none where they could not be
    /// read), so that a standby shows how far the shared sinks are, not its own stale copy.
    case standby(String, positions: [String: SinkPosition])
}

/// What `Coordination.record` did.
public enum Recording: Sendable, Equatable {
    case recorded
    /// The lease is another member's now (or expired): this member must stop delivering to
    /// shared sinks at once.
    case fenced(String)
    /// The database did not answer: the positions are not written; the term may go on.
    case failed(String)
}
