/// Owns the cycle and the state between cycles, so the service loop, `once` and `replay`
/// all run cycles the same way, one at a time.
public actor CycleRunner {
    var cycle: PollCycle
    public private(set) var state: AuditState

    public init(cycle: PollCycle, state: AuditState) {
        self.cycle = cycle
        self.state = state
    }

    /// Runs one cycle; `state` afterwards is what was last persisted, even on error.
    public func runCycle(now: Int64, until: Int64? = nil) async throws -> CycleReport {
        var cycle = self.cycle
        var state = self.state
        defer {
            self.cycle = cycle
            self.state = state
        }
        return try await cycle.run(state: &state, now: now, until: until)
    }
}
