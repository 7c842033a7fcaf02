import AuditShipper
import Foundation
import Testing

/// The state's update log: a large state's batches are appended, read back exactly, and a
/// crash at any point (a torn line, a stale log after a whole write) loses no batch that was
/// acknowledged and replays nothing of another generation.
@Suite struct StateUpdateLogTests {
    static let source = StateStoreTests.source
    let directory: TemporaryDirectory
    var path: String { directory.path + "/state.json" }
    var updates: String { path + ".updates" }

    /// Long enough that the held ids stay (the file is large), short enough that a jump prunes.
    static let lookback: Int64 = 10_000

    init() throws { directory = try TemporaryDirectory() }

    /// What `once` does over a burst: a state whose sinks each hold `held` ids (about 48 bytes
    /// each in the file), then batches of `size` new events at one second each.
    func largeState(held: Int = 3000) -> AuditState {
        var state = AuditState(source: Self.source, startAt: 0, now: 0)
        for name in ["journald", "stdout"] {
            var position = SinkPosition(start: 0)
            position.accept(events(0..<held), through: Int64(held - 1))
            position.prune(lookback: Self.lookback)
            state.positions[name] = position
        }
        state.markWritten()
        return state
    }

    func events(_ seconds: Range<Int>) -> [AuditEvent] {
        seconds.map { AuditEvent.make(id: "audit_log-\($0)", type: "t", effectiveAt: Int64($0), json: []) }
    }

    /// Delivers `seconds` to every sink as one batch and writes it as the cycle does.
    func deliver(_ seconds: Range<Int>, to state: inout AuditState, _ store: StateStore) throws {
        for name in state.positions.keys {
            state.positions[name]!.accept(events(seconds), through: Int64(seconds.upperBound - 1))
            state.positions[name]!.prune(lookback: Self.lookback)
        }
        state.updatedAt = Int64(seconds.upperBound)
        try store.save(state, as: .batch)
        state.markWritten()
    }

    func readBack() throws -> AuditState? { try StateStore(path: path, lock: false).load() }
    func size(_ file: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: file)[.size]) as? Int) ?? -1
    }

    @Test func aLargeStatesBatchesAreAppendedAndReadBackExactly() throws {
        defer { directory.remove() }
        let store = try StateStore(path: path)
        var state = largeState()
        try store.save(state)
        let file = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(file.count > 64 << 10, "large enough to be logged")
        for batch in 0..<5 {
            let from = 3000 + batch * 100
            try deliver(from..<(from + 100), to: &state, store)
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == file, "the file itself is not rewritten")
            #expect(try readBack() == state, "batch \(batch) is on disk")
        }
        // A batch costs its own ids, not the lookback's (3,000 and more per sink here).
        #expect(size(updates) < 5 * 2 * 100 * 40 + 5 * 600, "\(size(updates)) bytes for 1,000 ids")
        // The end of the cycle folds the log into the file: between cycles the file alone is the state.
        try store.save(state, as: .cycleEnd)
        #expect(size(updates) == 0)
        #expect(try readBack() == state)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains("\"audit_log-3499\":3499") && text.contains(#""version":3"#))
    }

    @Test func aSmallStateIsAlwaysWrittenWhole() throws {
        defer { directory.remove() }
        let store = try StateStore(path: path)
        var state = largeState(held: 10)
        try store.save(state)
        try deliver(10..<20, to: &state, store)
        #expect(size(updates) == 0, "nothing appended")
        #expect(try readBack() == state)
    }

    @Test func theLogIsFoldedWhenItGrowsToLogGrowthTimesTheFile() throws {
        defer { directory.remove() }
        let store = try StateStore(path: path)
        var state = largeState()
        try store.save(state)
        var largest = 0
        var largestRatio = 0.0
        for batch in 0..<60 {
            let from = 3000 + batch * 1000
            try deliver(from..<(from + 1000), to: &state, store)
            largest = max(largest, size(updates))
            largestRatio = max(largestRatio, Double(size(updates)) / Double(size(path)))
            #expect(size(updates) <= StateStore.logGrowth * size(path), "batch \(batch)")
        }
        #expect(largest > 0 && size(updates) < largest, "the log was folded at least once")
        #expect(largestRatio > Double(StateStore.logGrowth - 1), "the log grew past the file before it was folded")
        #expect(try readBack() == state)
    }

    /// kill -9 in the middle of an append: the cut line is dropped, every whole one is kept,
    /// and the next write starts over with the file written whole.
    @Test func aTornLastLineIsDroppedAndTheNextWriteIsWhole() throws {
        defer { directory.remove() }
        var expected: AuditState
        do {
            let store = try StateStore(path: path)
            var state = largeState()
            try store.save(state)
            try deliver(3000..<3100, to: &state, store)
            expected = state
            try deliver(3100..<3200, to: &state, store)
        }
        let log = try Data(contentsOf: URL(fileURLWithPath: updates))
        let lines = log.split(separator: 0x0A)
        #expect(lines.count == 2)
        for cut in [1, 17, lines[1].count / 2, lines[1].count] {
            try log.prefix(log.count - cut).write(to: URL(fileURLWithPath: updates))
            #expect(try readBack() == expected, "cut \(cut) bytes short")
        }
        // Garbage of the right shape (a stale disk block) fails its checksum just the same.
        var forged = log.prefix(lines[0].count + 1)
        forged.append(lines[1].dropLast(17))
        forged.append(contentsOf: Array(" 0123456789abcdef\n".utf8))
        try forged.write(to: URL(fileURLWithPath: updates))
        #expect(try readBack() == expected)
        // The next process's first write is whole: nothing is appended after the torn line.
        let store = try StateStore(path: path)
        var state = try #require(try store.load())
        try deliver(3100..<3200, to: &state, store)
        #expect(size(updates) == 0)
        #expect(try readBack() == state)
    }

    /// A crash after the file was written whole but before the log was emptied leaves lines
    /// of the previous generation: they are skipped, so no position moves back.
    @Test func linesOfAnEarlierGenerationAreSkipped() throws {
        defer { directory.remove() }
        let store = try StateStore(path: path)
        var state = largeState()
        try store.save(state)
        try deliver(3000..<3100, to: &state, store)
        let stale = try Data(contentsOf: URL(fileURLWithPath: updates))
        try deliver(3100..<3200, to: &state, store)
        try store.save(state, as: .cycleEnd)
        try stale.write(to: URL(fileURLWithPath: updates))
        let read = try #require(try readBack())
        #expect(read == state)
        #expect(read.positions["stdout"]!.completeBefore == 3199)
    }

    /// Pruning is not logged id by id: the reader drops the same ids when `recent_since` rises.
    @Test func prunedIdsAreDroppedOnReadingAsInMemory() throws {
        defer { directory.remove() }
        let store = try StateStore(path: path)
        var state = largeState()
        try store.save(state)
        try deliver(3000..<3100, to: &state, store)
        try deliver(20_000..<20_100, to: &state, store)
        let position = try #require(state.positions["stdout"])
        #expect(position.recentSince == 10_099 && position.recent.count == 100)
        #expect(try readBack() == state)
    }

    /// A position whose ids were replaced (not added to) cannot be appended: it is written whole.
    @Test func replacedIdsAreWrittenWhole() throws {
        defer { directory.remove() }
        let store = try StateStore(path: path)
        var state = largeState()
        try store.save(state)
        state.positions["stdout"]!.recent = ["only": 2999]
        try store.save(state, as: .batch)
        #expect(size(updates) == 0)
        #expect(try readBack() == state)
        // And so is a new set of sinks.
        state.markWritten()
        state.positions["syslog"] = SinkPosition(start: 0)
        try store.save(state, as: .batch)
        #expect(size(updates) == 0)
        #expect(try readBack() == state)
    }

    /// `state reset` keeps the log with the file it set aside.
    @Test func settingTheStateAsideTakesItsLog() throws {
        defer { directory.remove() }
        let store = try StateStore(path: path)
        var state = largeState()
        try store.save(state)
        try deliver(3000..<3100, to: &state, store)
        let aside = try #require(try store.setAside(now: 42))
        #expect(FileManager.default.fileExists(atPath: aside + ".updates"))
        #expect(!FileManager.default.fileExists(atPath: updates))
        #expect(try StateStore(path: aside, lock: false).load() == state)
        // `state reset --to`: the same store writes a new state; what was set aside stays whole.
        try store.save(AuditState(source: Self.source, startAt: 7, now: 7))
        #expect(try StateStore(path: aside, lock: false).load() == state)
        #expect(try readBack()?.startAt == 7)
    }
}
