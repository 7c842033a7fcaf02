import AuditShipper
import AuditSimulator
import Foundation
import Logging
import Testing

/// The service loop driven by hand-made ticks: no poll interval is waited out. (`waitFor`
/// polls for what the loop did, up to 5 s; it waits on the loop, not on a time.)
@Suite struct AuditServiceTests {
    static let now: Int64 = 1_800_000_000

    @Test func everyTickRunsOneCycleAndAFailedCycleIsRetriedAtTheNextTick() async throws {
        let simulator = AuditSimulator(trickyRate: 0)
        simulator.addEvents(count: 10, from: Self.now - 100, to: Self.now - 1, types: EventGenerator.organizationTypes)
        let sink = RecordingSink()
        let source = StoreSource(simulator)
        let logger = Logger.silent
        let cycle = PollCycle(
            source: source, sinks: [sink], settings: CycleSettings(), logger: logger, writer: .nowhere)
        let runner = CycleRunner(
            cycle: cycle,
            state: AuditState(
                source: StateSource(baseURL: "x", organization: nil, filters: AuditLogFilters()),
                startAt: Self.now - 1000, now: Self.now))
        let outcomes = Locked<[String]>([])
        let service = AuditService(
            runner: runner, interval: .seconds(60), logger: logger, clock: { Self.now },
            observer: { outcome in
                outcomes.withLock {
                    switch outcome {
                    case .finished(let report, _, _):
                        $0.append(
                            report.sinkFailures.isEmpty
                                ? "delivered \(report.delivered)"
                                : "failing: \(report.sinkFailures.map { "\($0.key): \($0.value)" }.joined())")
                    case .failed(let message, _): $0.append("failed: \(message)")
                    }
                }
            })
        let (ticks, continuation) = AsyncStream<Void>.makeStream()
        let loop = Task { try await service.run(ticks: { _ in ticks }) }

        sink.failing.withLock { $0 = true }
        continuation.yield()
        try await waitFor { outcomes.withLock { $0.count } == 1 }
        sink.failing.withLock { $0 = false }
        continuation.yield()
        try await waitFor { outcomes.withLock { $0.count } == 2 }
        simulator.addEvents(count: 3, from: Self.now - 50, types: ["user.added"])
        continuation.yield()
        try await waitFor { outcomes.withLock { $0.count } == 3 }
        continuation.finish()
        try await loop.value

        #expect(
            outcomes.withLock { $0 } == [
                "failing: recording: sink recording is closed: told to be down", "delivered 10", "delivered 3",
            ])
        #expect(sink.events.count == 13)
        #expect(await runner.state.positions["recording"]?.delivered == 13)
    }

    func waitFor(_ condition: () -> Bool) async throws {
        for _ in 0..<500 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
        #expect(condition())
    }
}
