/// Owns the cycle and the state between cycles, so the service loop, `once` and `replay`
/// all run cycles the same way, one at a time.
public actor CycleRunner {
    var cycle: PollCycle
    public private(set) var state: AuditState
    /// `state` is ahead of the file: a write failed (a full disk) after sinks took a batch.
    var unsavedIDs = false
    /// Where cycles run; nil for the global pool (tests).
    let executor: (any TaskExecutor)?

    public init(cycle: PollCycle, state: AuditState, executor: (any TaskExecutor)? = nil) {
        self.cycle = cycle
        self.state = state
        self.executor = executor
    }

    /// Swaps in a cycle built from a reloaded configuration; `make` gets the current one (for
    /// its `writer`). Called between cycles, never during one.
    public func replaceCycle(_ make: (PollCycle) -> PollCycle) {
        let old = cycle
        cycle = make(cycle)
        cycle.sharedBehind = old.sharedBehind
        if let detector = cycle.detector, let previous = old.detector { detector.adopt(previous) }
    }

    /// Runs one cycle; `state` afterwards holds everything delivered, even on error. If it
    /// could not be written, the next cycle writes it before it delivers anything.
    public func runCycle(now: Int64, until: Int64? = nil) async throws -> CycleReport {
        var cycle = self.cycle
        cycle.executor = executor
        var state = self.state
        let started = ContinuousClock.now
        defer {
            self.cycle = cycle
            self.state = state
        }
        do {
            if unsavedIDs {
                try cycle.write(&state, as: .whole)
                unsavedIDs = false
            }
            let report = try await withTaskExecutorPreference(executor) {
                try await cycle.run(state: &state, now: now, until: until)
            }
            cycle.metrics?.cycleEnded(after: ContinuousClock.now - started, succeeded: true, now: now)
            return report
        } catch let error as StateError {
            unsavedIDs = true
            cycle.metrics?.cycleEnded(after: ContinuousClock.now - started, succeeded: false, now: now)
            throw error
        } catch {
            cycle.metrics?.cycleEnded(after: ContinuousClock.now - started, succeeded: false, now: now)
            throw error
        }
    }
}
