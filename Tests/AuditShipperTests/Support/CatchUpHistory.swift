import AuditShipper
import AuditSimulator
import Testing

/// The histories the catch-up tests read, all before `now` and organization-scoped (a default
/// query returns them): 30,000 events evenly over 30 days; a burst (5,000 over 30 days and
/// 25,000 in one hour); or `dense` events in one hour.
enum CatchUpHistory: String, CaseIterable, Sendable {
    case even, burst, dense

    /// Adds it to `simulator`; how many events it holds.
    func add(to simulator: AuditSimulator, now: Int64, dense count: Int = 100_000) -> Int {
        let add = { (count: Int, from: Int64, to: Int64) in
            _ = simulator.addEvents(count: count, from: from, to: to, types: EventGenerator.organizationTypes)
        }
        switch self {
        case .even:
            add(30_000, now - 30 * 86_400, now - 60)
            return 30_000
        case .burst:
            add(5_000, now - 30 * 86_400, now - 60)
            add(25_000, now - 7200, now - 3601)
            return 30_000
        case .dense:
            add(count, now - 7200, now - 3601)
            return count
        }
    }
}

/// `events` hold `count` events, each once, oldest first.
func expectOnceInOrder(_ events: [AuditEvent], count: Int, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(events.count == count, sourceLocation: sourceLocation)
    #expect(Set(events.map(\.id)).count == events.count, "no duplicates", sourceLocation: sourceLocation)
    #expect(
        zip(events, events.dropFirst()).allSatisfy { $0.effectiveAt <= $1.effectiveAt }, "oldest first",
        sourceLocation: sourceLocation)
}
