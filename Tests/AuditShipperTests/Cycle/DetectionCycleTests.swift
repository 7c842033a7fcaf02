import AuditSimulator
import Logging
import Testing

@testable import AuditShipper

/// The cycle with detection rules in force: every sink is given events marked by what the
/// rules found, and a sink with `min_level` only those raised that far, its position moving
/// over the rest.
@Suite struct DetectionCycleTests {
    static let now: Int64 = 1_800_000_000

    @Test func eventsAreMarkedOnceForEverySinkAndAnAlertsSinkGetsOnlyWhatReachesItsLevel() async throws {
        let simulator = AuditSimulator(trickyRate: 0)
        let types = ["ip_allowlist.deleted", "login.succeeded", "project.deleted", "ip_allowlist.updated"]
        simulator.addEvents(count: 400, from: Self.now - 4000, to: Self.now - 100, types: types)
        let detector = Detector(try SigmaRuleReader().read(paths: [BuiltInRulesTests.folder]))
        let everything = RecordingSink(name: "journal")
        let alerts = RecordingSink(name: "alerts")
        var cycle = PollCycle(
            source: StoreSource(simulator), sinks: [everything, alerts],
            settings: CycleSettings(pageSize: 100, includeTenantEvents: .off, lookback: 600, maxWindowEvents: 10_000),
            logger: Logger.silent, detector: detector, minLevels: ["alerts": .high], writer: .recording { _, _ in })
        var state = AuditState(
            source: StateSource(baseURL: "http://sim", organization: nil, filters: AuditLogFilters()),
            startAt: Self.now - 5000, now: Self.now)
        let report = try await cycle.run(state: &state, now: Self.now)
        #expect(report.sinkFailures.isEmpty)
        #expect(everything.events.count == 400)
        let levels = Dictionary(grouping: everything.events, by: { $0.type }).mapValues { events in
            Set(events.map { $0.detection?.level })
        }
        #expect(levels["ip_allowlist.deleted"] == [.critical])
        #expect(levels["ip_allowlist.updated"] == [.high])
        #expect(levels["project.deleted"] == [.low])
        #expect(levels["login.succeeded"] == [nil])
        #expect(
            everything.events.first { $0.type == "ip_allowlist.deleted" }?.detection?.rules == [
                "openai-ip-allowlist-removed"
            ])
        // Only critical and high to the alerts sink, yet its position is where the other's is.
        #expect(alerts.events.count == 200)
        #expect(Set(alerts.events.map(\.type)) == ["ip_allowlist.deleted", "ip_allowlist.updated"])
        #expect(state.positions["alerts"]?.completeBefore == state.positions["journal"]?.completeBefore)
        // The marked copy is the event: same id, its JSON as received.
        let marked = everything.events.first { $0.detection != nil }!
        #expect(marked.jsonString.contains("\"id\":\"\(marked.id)\""))
    }
}
