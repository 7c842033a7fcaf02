/// Why the group's database cannot be used, in words: never the password, never a library's
/// type. A member that meets one stands by; only `check` and a start that finds the group
/// made for another source stop on it.
public enum CoordinationError: Error, CustomStringConvertible, Sendable, Equatable {
    /// No connection, no answer in time, a TLS or password failure: `reason` says which.
    case unreachable(url: String, reason: String)
    /// The server answered with an error other than a connection's (rights, a missing table).
    case refused(url: String, reason: String)
    /// The group's tables were made by a newer daemon.
    case newerSchema(found: Int, known: Int)
    /// The group was made by members reading another source: sharing positions with them
    /// would skip or repeat events.
    case otherSource(group: String, recorded: String, configured: String)

    public var description: String {
        switch self {
        case .unreachable(let url, let reason): "PostgreSQL at \(url) cannot be reached: \(reason)"
        case .refused(let url, let reason): "PostgreSQL at \(url) refused: \(reason)"
        case .newerSchema(let found, let known):
            "the coordination tables are at schema version \(found), newer than this daemon's \(known): upgrade openai-auditd on every member"
        case .otherSource(let group, let recorded, let configured):
            "coordination group '\(group)' reads \(recorded), but this configuration reads \(configured); give this member another coordination.group, or correct its api settings"
        }
    }
}
