/// Where the cycle puts the state after each batch, and so where every sink's position
/// reaches disk: `PollCycle.write` hands the state here, and `.file` is `StateStore.save`,
/// the one place the state file (`AuditState.encoded`) and its update log
/// (`StateUpdateLog.append`) are written.
public struct StateWriter: Sendable {
    let save: @Sendable (AuditState, StateStore.Write) throws -> Void

    /// The state file: `run` and `once`.
    public static func file(_ store: StateStore) -> StateWriter {
        StateWriter { try store.save($0, as: $1) }
    }

    /// Nowhere: positions move in memory only (`replay`, which leaves the state file alone).
    public static let nowhere = StateWriter { _, _ in }

    /// Tests: each write is handed to `record`, which may throw to play a failed write.
    public static func recording(_ record: @escaping @Sendable (AuditState, StateStore.Write) throws -> Void)
        -> StateWriter
    {
        StateWriter(save: record)
    }
}
