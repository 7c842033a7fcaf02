import AuditShipper
import Foundation
import Testing

@Suite struct StateStoreTests {
    static let source = StateSource(
        baseURL: "https://api.openai.com/v1", organization: "org-1",
        filters: AuditLogFilters(eventTypes: ["login.failed"]))

    func withStore(_ body: (StateStore, String) throws -> Void) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/state.json"
        try body(try StateStore(path: path), path)
    }

    @Test func aMissingFileIsAFirstRun() throws {
        try withStore { store, _ in
            let state = try store.load()
            #expect(state == nil)
        }
    }

    @Test func aSavedStateReadsBackTheSame() throws {
        try withStore { store, path in
            var state = AuditState(source: Self.source, startAt: 100, now: 200)
            var position = SinkPosition(start: 100)
            position.completeBefore = 150
            position.recent = ["audit_log-a": 149, "audit_log-b": 150, "odd \"id\" \\ \n é": 150]
            position.delivered = 2
            state.positions["journald"] = position
            position.fail("connection refused \"x\"", at: 190)
            state.positions["syslog tcp://[::1]:514"] = position
            try store.save(state)
            #expect(try store.load() == state)
            let text = try String(contentsOfFile: path, encoding: .utf8)
            #expect(text.contains(#""version":3"#))
            #expect(text.contains(#""complete_before":150"#))
            let names = try FileManager.default.contentsOfDirectory(
                atPath: (path as NSString).deletingLastPathComponent)
            #expect(!names.contains { $0.contains(".tmp") }, "the temporary file was renamed")
            let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            #expect(mode == 0o600)
        }
    }

    /// A version 1 file (one position for every sink) is read, each configured sink starts
    /// from that position, and the next save writes the current version.
    @Test func aVersionOneStateBecomesOnePositionPerSink() throws {
        try withStore { store, path in
            let v1 =
                #"{"version":1,"source":{"base_url":"https://api.openai.com/v1","organization":"org-1","filters":{"event_types":["login.failed"],"project_ids":[],"actor_ids":[],"actor_emails":[],"resource_ids":[]}},"start_at":100,"complete_before":5000,"delivered":7,"updated_at":5001,"recent":{"a":4500,"b":4999}}"#
            try v1.write(toFile: path, atomically: true, encoding: .utf8)
            var state = try #require(try store.load())
            #expect(state.version == 1 && state.source == Self.source)
            let changes = state.reconcile(sinks: ["journald", "stdout"], starts: [:])
            #expect(changes.added == ["journald", "stdout"] && changes.removed.isEmpty)
            for name in ["journald", "stdout"] {
                let position = try #require(state.positions[name])
                #expect(position.completeBefore == 5000 && position.recent == ["a": 4500, "b": 4999])
                #expect(position.delivered == 7)
                #expect(position.windowStart(lookback: 600) == 4400, "the window version 1 had")
            }
            try store.save(state)
            let again = try #require(try store.load())
            #expect(again.version == 3 && again.positions == state.positions)
        }
    }

    @Test func aNewSinkStartsWhereTheOthersAreOrAtItsOwnStartAndARemovedOneIsDropped() {
        var state = AuditState(source: Self.source, startAt: 1000, now: 0)
        #expect(state.reconcile(sinks: ["a"], starts: [:]).added == ["a"])
        #expect(state.positions["a"] == SinkPosition(start: 1000), "a new state's sinks start at its start_at")
        state.positions["a"]!.accept([AuditEvent.make(id: "x", type: "t", effectiveAt: 5000, json: [])], through: 5000)
        let changes = state.reconcile(sinks: ["a", "b", "c"], starts: ["c": 0])
        #expect(changes.added == ["b", "c"])
        #expect(state.positions["b"]?.completeBefore == 5000 && state.positions["b"]?.recent == ["x": 5000])
        #expect(state.positions["b"]?.delivered == 0, "delivered counts what the sink itself was given")
        #expect(state.positions["c"] == SinkPosition(start: 0), "start_at: beginning")
        #expect(state.reconcile(sinks: ["b", "c"], starts: [:]).removed == ["a"])
        #expect(state.positions["a"] == nil)
    }

    /// A lagging syslog sink known by its default name (`syslog <url>`) pointed at a backup
    /// collector is the same sink: it keeps its position and backlog instead of starting where
    /// the others are. When which was which cannot be told (two of its kind changed at once),
    /// the new ones start where the others are; a sink with a `name:` never changes name.
    @Test func aSinkWhoseDefaultNameChangedWithItsURLKeepsItsPosition() throws {
        var state = AuditState(source: Self.source, startAt: 1000, now: 0)
        _ = state.reconcile(sinks: ["journald", "syslog tcp://a:514"], starts: [:])
        state.positions["journald"]!.accept(
            [AuditEvent.make(id: "x", type: "t", effectiveAt: 9000, json: [])], through: 9000)
        let lagging = try #require(state.positions["syslog tcp://a:514"])
        let kinds = ["syslog tcp://backup:514": "syslog "]
        let changes = state.reconcile(sinks: ["journald", "syslog tcp://backup:514"], starts: [:], kinds: kinds)
        #expect(changes.renamed == ["syslog tcp://backup:514": "syslog tcp://a:514"])
        #expect(changes.added.isEmpty && changes.removed.isEmpty)
        #expect(state.positions["syslog tcp://backup:514"] == lagging, "the backlog stays the sink's")
        #expect(state.positions["syslog tcp://a:514"] == nil)

        // Two of a kind moved at once: no guess, both start where the others are.
        _ = state.reconcile(
            sinks: ["journald", "syslog tcp://backup:514", "syslog udp://b:514"], starts: [:],
            kinds: kinds.merging(["syslog udp://b:514": "syslog "]) { $1 })
        let both = ["syslog tcp://c:514": "syslog ", "syslog udp://d:514": "syslog "]
        let ambiguous = state.reconcile(sinks: ["journald"] + both.keys.sorted(), starts: [:], kinds: both)
        #expect(ambiguous.renamed.isEmpty && ambiguous.added.count == 2 && ambiguous.removed.count == 2)
        #expect(state.positions["syslog tcp://c:514"]?.completeBefore == 9000)
        // Without a kind (a sink with a name:), nothing is carried over.
        let named = state.reconcile(sinks: ["journald", "siem"], starts: [:])
        #expect(named.renamed.isEmpty && named.added == ["siem"])
    }

    @Test func filtersInAnotherOrderOrRepeatedAreTheSameSource() {
        let one = StateSource(
            baseURL: "x", organization: nil, filters: AuditLogFilters(eventTypes: ["b", "a"], projectIDs: ["p"]))
        let two = StateSource(
            baseURL: "x", organization: nil, filters: AuditLogFilters(eventTypes: ["a", "b", "a"], projectIDs: ["p"]))
        #expect(one == two)
        let other = StateSource(baseURL: "x", organization: nil, filters: AuditLogFilters(eventTypes: ["a"]))
        #expect(one != other)
    }

    @Test(arguments: [
        ("", "is corrupt (the file is empty)"),
        ("{not json", "is corrupt (not a JSON object)"),
        ("[1,2]", "is corrupt (not a JSON object)"),
        (#"{"complete_before": 1}"#, #"is corrupt (no "version")"#),
        (#"{"version": 4}"#, "has version 4, this openai-auditd reads versions 1 to 3"),
        (#"{"version": 1, "start_at": 0}"#, "is corrupt (missing"),
        (
            #"{"version":1,"source":{"base_url":"x","filters":{}},"start_at":0,"complete_before":"soon","recent":{},"delivered":0,"updated_at":0}"#,
            #"is corrupt (wrong type at "complete_before")"#
        ),
    ])
    func aCorruptFileStopsWithItsNameAndTheWayOut(content: String, reason: String) throws {
        try withStore { store, path in
            try content.write(toFile: path, atomically: true, encoding: .utf8)
            #expect {
                try store.load()
            } throws: { error in
                guard let error = error as? StateError, error.exitCode == 65 else { return false }
                let text = "\(error)"
                return text.contains(path) && text.contains(reason) && text.contains("openai-auditd state reset")
            }
            #expect(try String(contentsOfFile: path, encoding: .utf8) == content, "never reset silently")
        }
    }

    @Test func aSecondStoreOnTheSameFileIsRefused() throws {
        try withStore { _, path in
            #expect {
                try StateStore(path: path)
            } throws: { error in
                guard let error = error as? StateError, case .locked = error else { return false }
                return "\(error)".contains("in use by another openai-auditd (pid \(getpid())") && error.exitCode == 73
            }
            #expect(throws: Never.self) { try StateStore(path: path, lock: false) }
        }
    }

    @Test func theLockIsReleasedWithTheStore() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/state.json"
        do { _ = try StateStore(path: path) }
        #expect(throws: Never.self) { try StateStore(path: path) }
    }

    @Test func aLeftoverTemporaryFileDoesNotMatterAndIsRemovedWithTheNextLock() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/state.json"
        let state = AuditState(source: Self.source, startAt: 1, now: 1)
        do {
            let store = try StateStore(path: path)
            try store.save(state)
            try "torn half-writ".write(toFile: path + ".tmp-1234", atomically: false, encoding: .utf8)
            #expect(try store.load() == state)
            try store.save(state)
            #expect(try store.load() == state)
        }
        let store = try StateStore(path: path)
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp-1234"))
        #expect(try store.load() == state)
    }

    @Test(.needsRoot("to fill a private tmpfs")) func anUnwritableDirectoryFailsTheSaveAndKeepsTheOldFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // A full disk, for real: a 64 KiB tmpfs mounted in this test's mount namespace.
        #expect(
            mount("tmpfs", directory.path, "tmpfs", 0, "size=64k") == 0, "mount: \(String(cString: strerror(errno)))")
        defer { umount(directory.path) }
        let path = directory.path + "/state.json"
        let store = try StateStore(path: path)
        let state = AuditState(source: Self.source, startAt: 1, now: 1)
        try store.save(state)
        let filler = directory.path + "/filler"
        let fd = open(filler, O_WRONLY | O_CREAT, 0o600)
        let block = [UInt8](repeating: 0, count: 4096)
        while block.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
        close(fd)
        var next = state
        next.startAt = 99
        #expect {
            try store.save(next)
        } throws: { error in
            (error as? StateError)?.exitCode == 73 && "\(error)".contains("cannot write state file \(path)")
                && "\(error)".contains("No space left on device")
        }
        #expect(try store.load() == state)
        try FileManager.default.removeItem(atPath: filler)
        try store.save(next)
        #expect(try store.load() == next)
    }

    /// A symbolic link planted at the lock, the state or the receipts: refused with 73 naming
    /// it, and the file it points to is never opened for writing, truncated or chowned.
    @Test(arguments: ["state.json.lock", "state.json", "state.json.receipts.journald"])
    func aSymbolicLinkIsNeverFollowed(planted: String) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let target = directory.path + "/precious"
        try "do not touch\n".write(toFile: target, atomically: true, encoding: .utf8)
        if getuid() == 0 { #expect(chown(directory.path, 61_234, 61_234) == 0) }
        let before = try FileManager.default.attributesOfItem(atPath: target)
        try FileManager.default.createSymbolicLink(atPath: directory.path + "/" + planted, withDestinationPath: target)
        let path = directory.path + "/state.json"
        #expect {
            let store = try StateStore(path: path)
            _ = try store.load()
            try store.save(AuditState(source: Self.source, startAt: 1, now: 1))
            let receipts = ReceiptLog(path: path + ".receipts.journald")
            _ = try receipts.read()
            try receipts.record(AuditEvent.make(id: "a", type: "t", effectiveAt: 1, json: []))
        } throws: { error in
            guard let error = error as? StateError, case .symbolicLink = error else { return false }
            return error.exitCode == 73 && "\(error)".contains(directory.path + "/" + planted)
                && "\(error)".contains("symbolic link")
        }
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "do not touch\n")
        let after = try FileManager.default.attributesOfItem(atPath: target)
        #expect(after[.ownerAccountID] as? NSNumber == before[.ownerAccountID] as? NSNumber)
        #expect(after[.modificationDate] as? Date == before[.modificationDate] as? Date)
    }

    @Test func receiptsSurviveTheProcessAndATornLastLineIsLeftOut() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/state.json.receipts.journald"
        do {
            let log = ReceiptLog(path: path)
            #expect(try log.read().isEmpty)
            try log.record(AuditEvent.make(id: "audit_log-1", type: "t", effectiveAt: 10, json: []))
            try log.record(AuditEvent.make(id: "odd \"id\"\n", type: "t", effectiveAt: 11, json: []))
        }
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"id":"audit_log-3","effe"#.utf8))
        try handle.close()
        let log = ReceiptLog(path: path)
        #expect(
            try log.read() == [
                Receipt(id: "audit_log-1", effectiveAt: 10), Receipt(id: "odd \"id\"\n", effectiveAt: 11),
            ])
        try log.clear()
        #expect(try log.read().isEmpty)
        try log.record(AuditEvent.make(id: "audit_log-4", type: "t", effectiveAt: 12, json: []))
        #expect(try log.read() == [Receipt(id: "audit_log-4", effectiveAt: 12)])
        // Emptied again through the descriptor `clear` opened: the next line starts the file,
        // with no hole of NULs before it (the torn first receipt of a second crash).
        try log.clear()
        try log.record(AuditEvent.make(id: "audit_log-5", type: "t", effectiveAt: 13, json: []))
        #expect(try log.read() == [Receipt(id: "audit_log-5", effectiveAt: 13)])
        let bytes = try #require(FileManager.default.contents(atPath: path))
        #expect(!bytes.contains(0), "no NUL in the record")
        #expect(bytes.first == UInt8(ascii: "{"))
    }

    /// A RELP sink notes what it is about to write: what has no receipt after its note was in
    /// flight, and a torn note (a crash inside the write) counts for nothing.
    @Test func eventsWrittenWithoutAReceiptAreInFlight() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/state.json.receipts.relp"
        let events = (1...4).map { AuditEvent.make(id: "audit_log-\($0)", type: "t", effectiveAt: Int64($0), json: []) }
        do {
            let log = ReceiptLog(path: path)
            #expect(try log.inFlight().isEmpty)
            try log.recordWritten(events[0..<3])
            try log.record(events[0])
            try log.record(events[1])
        }
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"written":"audit_lo"#.utf8))
        try handle.close()
        let log = ReceiptLog(path: path)
        #expect(try log.inFlight() == ["audit_log-3"])
        #expect(
            try log.read() == [Receipt(id: "audit_log-1", effectiveAt: 1), Receipt(id: "audit_log-2", effectiveAt: 2)])
        try log.clear()
        #expect(try log.inFlight().isEmpty)
    }

    /// A request awaiting its acknowledgement stays awaited until each of its events has a
    /// receipt; a torn note of one counts for nothing.
    @Test func requestsAwaitedUntilTheirEventsHaveReceipts() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/state.json.receipts.hec"
        let events = (1...5).map { AuditEvent.make(id: "audit_log-\($0)", type: "t", effectiveAt: Int64($0), json: []) }
        do {
            let log = ReceiptLog(path: path)
            try log.recordWritten(events[0..<5])
            try log.recordAwaited(ack: 0, sentAt: 100, events: events[0..<2])
            try log.recordAwaited(ack: 1, sentAt: 101, events: events[2..<4])
            try log.record([Receipt(id: "audit_log-1", effectiveAt: 1), Receipt(id: "audit_log-2", effectiveAt: 2)])
        }
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"ack_id":2,"sent_at":102,"events":[{"id":"audit_lo"#.utf8))
        try handle.close()
        let contents = try ReceiptLog(path: path).contents()
        #expect(contents.receipts.map(\.id) == ["audit_log-1", "audit_log-2"])
        #expect(
            contents.awaited == [
                ReceiptLog.Awaited(
                    ack: 1, sentAt: 101,
                    events: [Receipt(id: "audit_log-3", effectiveAt: 3), Receipt(id: "audit_log-4", effectiveAt: 4)])
            ])
        #expect(contents.inFlight == ["audit_log-3", "audit_log-4", "audit_log-5"])
    }

    /// `state reset` run by root on a service's DynamicUser state directory: what root
    /// writes there must stay the service's, or the next start cannot read its own state.
    @Test(.needsRoot("to change file owners")) func rootWritingAnotherUsersStateLeavesItToThatUser() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let service: uid_t = 61_234
        #expect(chown(directory.path, service, service) == 0)
        let path = directory.path + "/state.json"
        let store = try StateStore(path: path)
        try store.save(AuditState(source: Self.source, startAt: 1, now: 1))
        for file in [path, path + ".lock"] {
            let attributes = try FileManager.default.attributesOfItem(atPath: file)
            #expect((attributes[.ownerAccountID] as? NSNumber)?.uint32Value == service, "\(file)")
            #expect((attributes[.groupOwnerAccountID] as? NSNumber)?.uint32Value == service, "\(file)")
        }
        #expect(try store.setAside(now: 5) == path + ".before-reset-5")
    }

    @Test func theStateDirectoryIsCreated() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try StateStore(path: directory.path + "/a/b/state.json")
        try store.save(AuditState(source: Self.source, startAt: 1, now: 1))
        #expect(try store.load() != nil)
    }

    @Test func windowStartAndPruning() {
        var position = SinkPosition(start: 1000)
        #expect(position.windowStart(lookback: 600) == 1000, "never before start_at")
        position.completeBefore = 5000
        #expect(position.windowStart(lookback: 600) == 4400)
        position.recent = ["old": 4399, "edge": 4400, "new": 4999]
        position.prune(lookback: 600)
        #expect(Set(position.recent.keys) == ["edge", "new"])
        #expect(position.recentSince == 4400)
    }

    /// Pruning by the ids' order in time drops exactly what filtering every id would, whatever
    /// order the ids came in (late events, receipts, an id given again); `needs` agrees with
    /// the model throughout.
    @Test func pruningMatchesFilteringEveryId() {
        var generator = SystemRandomNumberGenerator()
        for round in 0..<20 {
            var position = SinkPosition(start: 0)
            var model: [String: Int64] = [:]
            var now: Int64 = 1000
            for step in 0..<300 {
                now += Int64.random(in: 0...20, using: &generator)
                let at = now - (Bool.random(using: &generator) ? 0 : Int64.random(in: 0...400, using: &generator))
                let id = "audit_log-\(Int.random(in: 0..<400, using: &generator))"
                if step % 3 == 0 {
                    if at >= position.recentSince, model[id] == nil { model[id] = at }
                    _ = position.hold([Receipt(id: id, effectiveAt: at)])
                } else {
                    model[id] = at
                    position.accept([AuditEvent.make(id: id, type: "t", effectiveAt: at, json: [])], through: now)
                }
                let lookback = Int64.random(in: 0...300, using: &generator)
                let floor = position.recentSince
                position.prune(lookback: lookback)
                // As filtering did: everything below the floor goes when the floor rises.
                if position.recentSince > floor { model = model.filter { $0.value >= position.recentSince } }
                #expect(position.recent == model, "round \(round), step \(step)")
                // `needs` answers by the id whatever the times: an id held at another time than
                // the probe's is still held (a first version that skipped the lookup above the
                // newest time held failed here).
                let probe = AuditEvent.make(
                    id: "audit_log-\(Int.random(in: 0..<400, using: &generator))", type: "t",
                    effectiveAt: now + Int64.random(in: -400...20, using: &generator), json: [])
                let windowStart = position.windowStart(lookback: lookback)
                #expect(
                    position.needs(probe, windowStart: windowStart)
                        == (probe.effectiveAt >= windowStart && model[probe.id] == nil),
                    "round \(round), step \(step)")
            }
        }
    }

    /// The id set records how far back it is complete: a longer lookback re-reads no further
    /// back than that (nothing re-sent), and a shorter one prunes at once.
    @Test func raisingTheLookbackReSendsNothingAndLoweringItPrunes() {
        var position = SinkPosition(start: 0)
        position.completeBefore = 5000
        position.recent = ["a": 4500, "b": 4900]
        position.prune(lookback: 600)
        #expect(position.windowStart(lookback: 7200) == 4400, "not 5000 - 7200: the ids before 4400 are gone")
        position.completeBefore = 6000
        position.prune(lookback: 7200)
        #expect(position.recentSince == 4400 && position.recent.count == 2, "a longer lookback keeps what it has")
        position.completeBefore = 12_000
        position.prune(lookback: 7200)
        #expect(position.windowStart(lookback: 7200) == 4800, "and grows to its full length as T moves")
        position.prune(lookback: 60)
        #expect(position.recentSince == 11_940 && position.recent.isEmpty, "a shorter one prunes at once")
    }
}
