import Synchronization

/// Whether the API refused `tenant_only` under `include_tenant_events: auto` (see
/// `PollCycle.tenantPassRejected`). One per cycle as built, shared by the copies that read
/// slices ahead, so a refusal several of them meet at once is noted, and said, once.
final class TenantPassRefusal: Sendable {
    private let state = Mutex(false)

    var refused: Bool { state.withLock { $0 } }

    /// Notes a refusal; true only the first time.
    func note() -> Bool {
        state.withLock { refused in
            defer { refused = true }
            return !refused
        }
    }
}
