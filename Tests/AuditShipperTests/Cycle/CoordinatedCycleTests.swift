import AuditShipper
import AuditSimulator
import Logging
import Synchronization
import Testing

/// Two members of a group, in-process: their cycles against one simulator, one shared
/// destination and a local one each, and a group database played by `FakeGroup` (the real
/// one, PostgreSQL, is in `CoordinationTests` of the integration tests).
@Suite struct CoordinatedCycleTests {
    let simulator = AuditSimulator(trickyRate: 0)
    let group = FakeGroup()
    /// The one destination of the whole group (a SIEM): both members' shared sink writes here.
    let siem = RecordingSink(name: "siem")
    static let now: Int64 = 1_800_000_000
    static let source = StateSource(baseURL: "http://sim", organization: nil, filters: AuditLogFilters())

    func member(
        _ name: String, local: RecordingSink, maxWindowEvents: Int = 10_000,
        onWrite: @escaping @Sendable () -> Void = {}
    ) -> (PollCycle, FakeMember) {
        let member = FakeMember(name: name, group: group)
        let cycle = PollCycle(
            source: StoreSource(simulator), sinks: [local, siem],
            settings: CycleSettings(
                pageSize: 100, includeTenantEvents: .off, lookback: 600, maxWindowEvents: maxWindowEvents),
            logger: Logger.silent, initialSliceWidth: 600, coordination: member, shared: ["siem"],
            writer: .recording { _, _ in onWrite() })
        return (cycle, member)
    }

    func state() -> AuditState { AuditState(source: Self.source, startAt: Self.now - 20_000, now: Self.now) }

    @Test func onlyTheHolderDeliversToTheSharedSinkAndTheNextHolderStartsFromTheGroupsPosition() async throws {
        simulator.addEvents(
            count: 1500, from: Self.now - 3000, to: Self.now - 100, types: EventGenerator.organizationTypes)
        let localA = RecordingSink(name: "file")
        let localB = RecordingSink(name: "file")
        var (a, memberA) = member("a", local: localA)
        var (b, _) = member("b", local: localB)
        var stateA = state()
        var stateB = state()

        _ = try await a.run(state: &stateA, now: Self.now)
        _ = try await b.run(state: &stateB, now: Self.now)
        #expect(siem.events.count == 1500, "only a, the holder, delivered to the shared sink")
        #expect(localA.events.count == 1500 && localB.events.count == 1500, "each host's own sink has everything")
        #expect(group.holder == "a")

        // a is gone (its lease expired); b takes over and reads the group's position.
        memberA.holding.withLock { $0 = false }
        group.expire()
        simulator.addEvents(count: 300, from: Self.now + 10, to: Self.now + 50, types: EventGenerator.organizationTypes)
        _ = try await b.run(state: &stateB, now: Self.now + 60)
        #expect(group.holder == "b")
        #expect(siem.events.count == 1800)
        #expect(Set(siem.ids).count == 1800, "the new holder sent nothing a had sent")
        #expect(localB.events.count == 1800)
        // a comes back: a standby, it delivers to its file only.
        _ = try await a.run(state: &stateA, now: Self.now + 60)
        #expect(localA.events.count == 1800)
        #expect(siem.events.count == 1800)
    }

    @Test func aHolderFencedMidCycleStopsAtTheBatchInFlightWhileItsLocalSinkGoesOn() async throws {
        simulator.addEvents(
            count: 3000, from: Self.now - 3000, to: Self.now - 100, types: EventGenerator.organizationTypes)
        let localA = RecordingSink(name: "file")
        let localB = RecordingSink(name: "file")
        var (a, _) = member("a", local: localA)
        var (b, _) = member("b", local: localB)
        var stateA = state()
        var stateB = state()
        // After a's first batch the lease is b's: a's write of that batch's position is fenced.
        group.fenceAtRecord.withLock { $0 = 2 }
        _ = try await a.run(state: &stateA, now: Self.now)
        let first = siem.batches.withLock { $0.count }
        #expect(first == 1, "nothing more to the shared sink after the fence")
        #expect(localA.events.count == 3000, "the local sink is never held back")
        group.expire()
        _ = try await b.run(state: &stateB, now: Self.now)
        // The batch in flight at the fence is the only repeat.
        let firstBatch = siem.batches.withLock { $0[0].count }
        #expect(siem.events.count == 3000 + firstBatch)
        #expect(Set(siem.ids).count == 3000)
    }

    @Test func aHolderWhoseLeaseRanOutDeliversNothingMoreToTheSharedSink() async throws {
        simulator.addEvents(
            count: 2500, from: Self.now - 3000, to: Self.now - 100, types: EventGenerator.organizationTypes)
        let local = RecordingSink(name: "file")
        var (a, frozen) = member("a", local: local)
        var state = state()
        // Frozen past its lease after the first batch: its own clock says so before any write.
        let member = frozen
        group.onRecord.withLock { $0 = { count in if count >= 2 { member.holding.withLock { $0 = false } } } }
        _ = try await a.run(state: &state, now: Self.now)
        #expect(siem.batches.withLock { $0.count } == 1)
        #expect(local.events.count == 2500)
    }

    @Test func aDatabaseThatDoesNotAnswerHoldsOnlyTheSharedSinksAndTheirPositionIsWrittenFirstWhenItDoes()
        async throws
    {
        simulator.addEvents(
            count: 2500, from: Self.now - 3000, to: Self.now - 100, types: EventGenerator.organizationTypes)
        let local = RecordingSink(name: "file")
        var (a, _) = member("a", local: local)
        var state = state()
        group.failFromRecord.withLock { $0 = 2 }
        _ = try await a.run(state: &state, now: Self.now)
        #expect(local.events.count == 2500)
        #expect(siem.batches.withLock { $0.count } == 1, "the shared sink waits after the write that failed")
        #expect(group.positions.withLock { $0["siem"]?.delivered } == 0, "only the term's first write reached it")
        group.failFromRecord.withLock { $0 = nil }
        _ = try await a.run(state: &state, now: Self.now + 60)
        #expect(siem.events.count == 2500)
        #expect(Set(siem.ids).count == 2500)
        #expect(group.positions.withLock { $0["siem"]?.completeBefore } == state.positions["siem"]?.completeBefore)
    }
}

extension CoordinatedCycleTests {
    @Test func aStandbyBusyCatchingUpTakesOverBetweenSlicesAndTheSharedSinkCatchesUpBeforeItsFile() async throws {
        simulator.addEvents(
            count: 6000, from: Self.now - 18_000, to: Self.now - 100, types: EventGenerator.organizationTypes)
        let localA = RecordingSink(name: "file")
        var (a, _) = member("a", local: localA, maxWindowEvents: 500)
        var stateA = state()
        _ = try await a.run(state: &stateA, now: Self.now)
        #expect(siem.events.count == 6000 && group.holder == "a")

        // b starts from nothing, a standby; three batches into its file's catch-up, a's lease
        // runs out and b's own requests for it take it, as `PostgresCoordination.watch` does.
        let localB = RecordingSink(name: "file")
        let writes = Mutex(0)
        let takeover = Mutex<FakeMember?>(nil)
        let group = self.group
        let (made, memberB) = member("b", local: localB, maxWindowEvents: 500) {
            let count = writes.withLock {
                $0 += 1
                return $0
            }
            if count == 3, let member = takeover.withLock({ $0 }) {
                group.expire()
                member.takeInBackground()
            }
        }
        takeover.withLock { $0 = memberB }
        var b = made
        var stateB = state()
        let first = try await b.run(state: &stateB, now: Self.now + 30)
        #expect(group.holder == "b")
        #expect(first.again, "the cycle ended for the lease, and says the next starts at once")
        #expect(localB.events.count < 6000, "it ended mid catch-up, not at the end of its window")
        #expect(siem.events.count == 6000, "nothing to the shared sink before the term begins")

        // The new term: the shared sink first, from the group's position (the file is further behind).
        simulator.addEvents(count: 200, from: Self.now + 5, to: Self.now + 25, types: EventGenerator.organizationTypes)
        let fileBefore = localB.events.count
        let second = try await b.run(state: &stateB, now: Self.now + 30)
        #expect(second.again, "the file sat the term's first cycle out; the next starts at once")
        #expect(siem.events.count == 6200 && Set(siem.ids).count == 6200, "the new holder repeated nothing")
        #expect(localB.events.count == fileBefore, "the file waits one cycle")
        let third = try await b.run(state: &stateB, now: Self.now + 30)
        #expect(!third.again)
        #expect(localB.events.count == 6200 && Set(localB.ids).count == 6200, "the file caught up, each event once")
        #expect(siem.events.count == 6200)
    }

    @Test func aLeaseTakenAtTheLastSliceStillEndsTheCycleOnlyOnceAndAStandbyNeverLoopsOnIt() async throws {
        simulator.addEvents(
            count: 300, from: Self.now - 1000, to: Self.now - 100, types: EventGenerator.organizationTypes)
        let local = RecordingSink(name: "file")
        let (made, memberB) = member("b", local: local)
        var b = made
        group.lease.withLock { $0 = ("a", 1, false) }
        var state = state()
        let standing = try await b.run(state: &state, now: Self.now)
        #expect(!standing.again && siem.events.isEmpty && local.events.count == 300)
        // Taken between cycles: the next cycle's `lead` begins the term; nothing ends early.
        group.expire()
        memberB.takeInBackground()
        let leading = try await b.run(state: &state, now: Self.now)
        #expect(!leading.again, "a term begun at the cycle's start needs no cycle at once")
        #expect(siem.events.count == 300 && !memberB.tookLease)
    }
}

/// The group's database: one lease (holder, term) and the shared positions.
final class FakeGroup: Sendable {
    let lease = Mutex<(holder: String?, term: Int64, expired: Bool)>((nil, 0, true))
    let positions = Mutex<[String: SinkPosition]>([:])
    /// At this record (1-based), the lease is found to be another member's.
    let fenceAtRecord = Mutex<Int?>(nil)
    let records = Mutex(0)
    /// From this record (1-based) on, writes fail (the database stopped answering).
    let failFromRecord = Mutex<Int?>(nil)
    /// Called at every record with its number (1-based).
    let onRecord = Mutex<(@Sendable (Int) -> Void)?>(nil)

    var holder: String? { lease.withLock { $0.holder } }
    func expire() { lease.withLock { $0.expired = true } }
}

final class FakeMember: Coordination {
    let name: String
    let group: FakeGroup
    let term = Mutex<Int64?>(nil)
    let holding = Mutex(false)

    init(name: String, group: FakeGroup) {
        self.name = name
        self.group = group
    }

    var holds: Bool { holding.withLock { $0 } }

    let took = Mutex(false)
    var tookLease: Bool { took.withLock { $0 } }

    /// What `PostgresCoordination`'s standby watch does when the lease is free: takes it
    /// without a cycle asking.
    func takeInBackground() {
        let taken = group.lease.withLock { lease -> Int64? in
            guard lease.expired || lease.holder == nil else { return nil }
            lease = (name, lease.term + 1, false)
            return lease.term
        }
        guard let taken else { return }
        term.withLock { $0 = taken }
        loaded.withLock { $0 = false }
        holding.withLock { $0 = true }
        took.withLock { $0 = true }
    }

    let loaded = Mutex(false)

    func lead() async -> Leadership {
        took.withLock { $0 = false }
        let mine = term.withLock { $0 }
        let (holder, current, expired) = group.lease.withLock { $0 }
        if let mine, holder == name, current == mine, !expired {
            holding.withLock { $0 = true }
            // A term taken in the background begins here, with the group's positions.
            if loaded.withLock({ $0 }) { return .leads(term: mine, positions: nil) }
            loaded.withLock { $0 = true }
            return .leads(term: mine, positions: group.positions.withLock { $0 })
        }
        guard expired || holder == nil else {
            term.withLock { $0 = nil }
            holding.withLock { $0 = false }
            return .standby("\(holder!) holds the lease", positions: group.positions.withLock { $0 })
        }
        let taken = current + 1
        group.lease.withLock { $0 = (name, taken, false) }
        term.withLock { $0 = taken }
        holding.withLock { $0 = true }
        loaded.withLock { $0 = true }
        return .leads(term: taken, positions: group.positions.withLock { $0 })
    }

    func record(_ positions: [String: SinkPosition]) async -> Recording {
        let count = group.records.withLock {
            $0 += 1
            return $0
        }
        group.onRecord.withLock { $0 }?(count)
        if let from = group.failFromRecord.withLock({ $0 }), count >= from {
            return .failed("the database does not answer")
        }
        if let fence = group.fenceAtRecord.withLock({ $0 }), count >= fence {
            group.lease.withLock { $0.holder = "someone else" }
            group.fenceAtRecord.withLock { $0 = nil }
        }
        let mine = term.withLock { $0 }
        let (holder, current, expired) = group.lease.withLock { $0 }
        guard holder == name, current == mine, !expired else {
            holding.withLock { $0 = false }
            term.withLock { $0 = nil }
            return .fenced("another member holds the lease")
        }
        group.positions.withLock { stored in
            for (name, position) in positions { stored[name] = position }
        }
        return .recorded
    }

    func resign() async {}
}
