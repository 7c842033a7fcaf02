import AuditShipper
import AuditSimulator
import Foundation
import Testing

/// The deployment people run: the journal plus a SIEM collector over TCP. Each sink keeps its
/// own position, so a collector that is down neither holds the journal back nor makes it
/// receive anything twice; and the journal gets each event exactly once even after kill -9.
/// In `JournaldSinkTests`, whose tests run one at a time, since some of them stop journald.
extension JournaldSinkTests {
    /// The ids of the journal entries with `identifier`.
    /// Is a thread of `pid` asleep in a unix socket's send, waiting for its peer to read?
    static func blockedSending(_ pid: pid_t) -> Bool {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.contains { task in
            let channel = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/wchan", encoding: .utf8)) ?? ""
            return ["unix_wait_for_peer", "sock_alloc_send_pskb", "sock_wait_for_wmem"].contains(channel)
        }
    }

    func journalIDs(_ identifier: String) throws -> [String] {
        try JournaldHarness.read(["SYSLOG_IDENTIFIER=\(identifier)"]).compactMap {
            JournaldHarness.text($0["OPENAI_AUDIT_ID"])
        }
    }

    /// The ids rsyslog received from `hostname` (the SD's first parameter is the id).
    func collectorIDs(_ rsyslog: RsyslogHarness, hostname: String) -> [String] {
        rsyslog.messages(hostname: hostname).compactMap {
            ($0["structured-data"] as? String)?.split(separator: "\"").dropFirst().first.map(String.init)
        }
    }

    func twoSinks(_ harness: DaemonHarness, _ rsyslog: RsyslogHarness, identifier: String, hostname: String) throws {
        try harness.writeConfig(
            poll: "  interval: 1s\n  start_at: -1h",
            extra: """
                sinks:
                  - type: journald
                    identifier: \(identifier)
                  - type: syslog
                    name: siem
                    url: tcp://127.0.0.1:\(rsyslog.tcpPort)
                    hostname: \(hostname)
                """)
    }

    func withJournalAndCollector(_ body: (DaemonHarness, RsyslogHarness, String, String) async throws -> Void)
        async throws
    {
        try await JournaldHarness.shared.start()
        let rsyslog = try await RsyslogHarness.started()
        do {
            try await DaemonHarness.with { harness async throws in
                let suffix = UUID().uuidString.prefix(8)
                try await body(harness, rsyslog, "auditd-test-\(suffix)", "t-two-\(suffix)")
            }
        } catch {
            await rsyslog.close()
            throw error
        }
        await rsyslog.close()
    }

    @Test func aCollectorDownAtStartDoesNotBlindTheJournalAndCatchesUpWhenBack() async throws {
        try await withJournalAndCollector { harness, rsyslog, identifier, hostname in
            try await rsyslog.stop()
            harness.simulator.addEvents(count: 40, from: Self.now - 600, to: Self.now - 300)
            try twoSinks(harness, rsyslog, identifier: identifier, hostname: hostname)
            let listener = try NotifyListener(directory: harness.directory)
            defer { listener.stop() }
            let daemon = try harness.launch(
                ["run", "--config", harness.configPath], environment: ["NOTIFY_SOCKET": listener.path])
            try await harness.waitFor("the journal to get all 40") { try journalIDs(identifier).count >= 40 }
            #expect(daemon.isRunning, "a collector that is down is a warning, not an exit")
            #expect(harness.stderr.contains("sink is not reachable; the other sinks go on"))
            #expect(listener.lines.contains("READY=1"))
            #expect(
                listener.lines.contains {
                    $0.hasPrefix("STATUS=started") && $0.contains("not reachable, will catch up: siem")
                },
                "\(listener.lines)")
            try await harness.waitFor("a status naming the failing sink") {
                listener.lines.contains { $0.hasPrefix("STATUS=delivered") && $0.contains("failing: siem") }
            }
            #expect(harness.delivered(sink: "siem") == 0)
            harness.simulator.addEvents(count: 10, from: Self.now - 200)
            try await harness.waitFor("the journal to get 10 more") { try journalIDs(identifier).count >= 50 }
            try await rsyslog.start()
            try await harness.waitFor("the collector to catch up", timeout: .seconds(90)) {
                harness.delivered(sink: "siem") == 50
            }
            kill(daemon.processIdentifier, SIGTERM)
            #expect(try await DaemonHarness.wait(daemon, timeout: .seconds(20)) == 0)
            let journal = try journalIDs(identifier)
            #expect(journal.count == 50 && Set(journal).count == 50, "the journal: each event once")
            try await harness.waitFor("50 messages at the collector") {
                collectorIDs(rsyslog, hostname: hostname).count >= 50
            }
            let collected = collectorIDs(rsyslog, hostname: hostname)
            #expect(Set(collected).count == 50 && collected.count == 50, "the collector: each event once")
            #expect(Set(collected) == Set(journal))
        }
    }

    /// Splunk's HEC or Elasticsearch down at start: the journal is not held back, and once the
    /// server is there the sink catches up with every event once.
    @Test(arguments: ["splunk_hec", "elasticsearch"])
    func anHTTPSinkDownAtStartDoesNotHoldTheJournalBackAndCatchesUpOnce(type: String) async throws {
        try await JournaldHarness.shared.start()
        try await DaemonHarness.with { harness async throws in
            let identifier = "auditd-test-\(UUID().uuidString.prefix(8))"
            let port = try RsyslogHarness.freePort()
            let index = harness.directory + "/index.jsonl"
            let ids = harness.simulator.addEvents(count: 40, from: Self.now - 600, to: Self.now - 300)
            try harness.writeConfig(
                poll: "  interval: 1s\n  start_at: -1h",
                extra: """
                    sinks:
                      - type: journald
                        identifier: \(identifier)
                      - type: \(type)
                        name: http-sink
                        url: http://127.0.0.1:\(port)
                        timeout: 2s
                    """)
            let token = SplunkHECSinkTests.token
            let daemon = try harness.launch(
                ["run", "--config", harness.configPath], environment: ["SPLUNK_HEC_TOKEN": token])
            try await harness.waitFor("the journal to get all 40") { try journalIDs(identifier).count >= 40 }
            #expect(daemon.isRunning, "a server that is down is a warning, not an exit")
            #expect(harness.delivered(sink: "http-sink") == 0)
            let server =
                type == "splunk_hec"
                ? try ToolProcess("fake-splunk-hec.py", [index, "--token", token, "--port", "\(port)"])
                : try ToolProcess("fake-elasticsearch.py", [index, "--port", "\(port)"])
            defer { server.stop() }
            try await harness.waitFor("the HTTP sink to catch up", timeout: .seconds(90)) {
                harness.delivered(sink: "http-sink") == 40
            }
            kill(daemon.processIdentifier, SIGTERM)
            #expect(try await DaemonHarness.wait(daemon, timeout: .seconds(20)) == 0)
            let indexed = type == "splunk_hec" ? SplunkHECSinkTests.ids(index) : ElasticsearchSinkTests.ids(index)
            #expect(indexed.count == 40 && Set(indexed) == Set(ids), "the index: each event once")
            #expect(try journalIDs(identifier).count == 40, "the journal: each event once")
        }
    }

    @Test func aCollectorDownMidRunHoldsOnlyItsOwnPosition() async throws {
        try await withJournalAndCollector { harness, rsyslog, identifier, hostname in
            harness.simulator.addEvents(count: 30, from: Self.now - 600, to: Self.now - 300)
            try twoSinks(harness, rsyslog, identifier: identifier, hostname: hostname)
            let daemon = try harness.launch(["run", "--config", harness.configPath])
            try await harness.waitFor("both to get 30") { harness.delivered() == 30 }
            try await rsyslog.stop()
            for round in 1...3 {
                harness.simulator.addEvents(count: 10, from: Self.now - 200 + Int64(round) * 10)
                try await harness.waitFor("the journal, round \(round)") {
                    try journalIDs(identifier).count >= 30 + round * 10
                }
            }
            try await harness.waitFor("the collector's failure") { harness.stderr.contains("sink=siem") }
            #expect(harness.delivered(sink: "siem") == 30, "the collector's position did not move")
            try await rsyslog.start()
            try await harness.waitFor("the collector to catch up", timeout: .seconds(90)) {
                harness.delivered(sink: "siem") == 60
            }
            kill(daemon.processIdentifier, SIGTERM)
            #expect(try await DaemonHarness.wait(daemon, timeout: .seconds(20)) == 0)
            let journal = try journalIDs(identifier)
            #expect(
                journal.count == 60 && Set(journal).count == 60,
                "nothing twice into the journal while the collector was down")
            try await harness.waitFor("60 at the collector") { collectorIDs(rsyslog, hostname: hostname).count >= 60 }
            let collected = collectorIDs(rsyslog, hostname: hostname)
            #expect(Set(collected).count == 60 && collected.count == 60)
        }
    }

    /// journald is stopped (SIGSTOP) while a batch is in flight, so the daemon blocks in
    /// sd_journal_sendv once the socket's queue is full; then kill -9, and journald goes on.
    /// The receipts tell the next start which entries of that batch the journal holds.
    @Test func killNineMidBatchIntoTheJournalLeavesEachEventExactlyOnce() async throws {
        try await JournaldHarness.shared.start()
        try await DaemonHarness.with { harness async throws in
            let identifier = "auditd-test-\(UUID().uuidString.prefix(8))"
            harness.simulator.addEvents(count: 16_000, from: Self.now - 5 * 86_400, to: Self.now - 60)
            // Slow pages stretch the catch-up so each stop lands in it: unslowed, a loaded test
            // once saw the second round's catch-up end before journald could be stopped.
            harness.simulator.faults.enqueue(.slow(milliseconds: 50), count: 100_000)
            try journaldConfig(harness, identifier: identifier, poll: "  start_at: -6d\n  max_window_events: 2000")
            let receipts = Daemon.sinkFilePath(statePath: harness.statePath, sink: "journald")
            var cut = 0
            var killed: [Int32] = []
            func record() -> String { (try? String(contentsOfFile: receipts, encoding: .utf8)) ?? "" }
            func held() -> Int { record().split(separator: "\n").count }
            for round in 1...3 {
                // What the last kill left is read (and held) by the new process first. Then more
                // than one batch's worth is delivered in the round, so the record is emptied and
                // written again through the descriptor it keeps before the cut: the path that
                // once tore the first receipt of the next batch.
                let before = harness.delivered(sink: "journald") ?? 0
                let daemon = try harness.launch(["run", "--config", harness.configPath])
                try await harness.waitFor("a batch delivered, round \(round)", timeout: .seconds(120)) {
                    (harness.delivered(sink: "journald") ?? 0) > before + 1000
                }
                // Once journald stops reading, the daemon can send only what its socket's queue
                // takes (net.unix.max_dgram_qlen) and then blocks in sd_journal_sendv: at most
                // one more batch completes, and the one after is cut, its receipts kept.
                // Killed only once a thread of it sleeps in the kernel's send (its wait channel):
                // a kill while it still sends could land between an entry the journal took and
                // its receipt, the few instructions `ReceiptLog` names, which a loaded machine
                // can stretch (seen: 12,001 entries when the kill came 300 ms after the stop).
                // A stop that lands between two batches (the record just emptied, the next
                // batch's first entry blocked) leaves nothing held: journald goes on a moment
                // and is stopped again, up to five times.
                var blockedMidBatch = false
                for _ in 0..<5 where !blockedMidBatch {
                    try await JournaldHarness.shared.signal(SIGSTOP)
                    let deadline = ContinuousClock.now + .seconds(15)
                    while ContinuousClock.now < deadline {
                        if held() > 0 && Self.blockedSending(daemon.processIdentifier) {
                            blockedMidBatch = true
                            break
                        }
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    if !blockedMidBatch {
                        try await JournaldHarness.shared.signal(SIGCONT)
                        try await Task.sleep(for: .milliseconds(300))
                    }
                }
                guard blockedMidBatch else {
                    throw HarnessError("the daemon never blocked mid-batch, round \(round); stderr:\n\(harness.stderr)")
                }
                killed.append(daemon.processIdentifier)
                kill(daemon.processIdentifier, SIGKILL)
                _ = try await DaemonHarness.wait(daemon, timeout: .seconds(10))
                try await JournaldHarness.shared.signal(SIGCONT)
                if held() > 0 { cut += 1 }
                // No receipt torn: what the kill left reads whole, from its first byte.
                #expect(!record().contains("\0"), "round \(round): the receipt record has a hole of NULs")
            }
            #expect(cut == 3, "every kill landed with part of a batch in the journal")
            harness.simulator.faults.removeAll()
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 0, "\(harness.stderr)")
            #expect(harness.stderr.contains("sink already holds events of an interrupted batch"))
            let ids = try journalIDs(identifier)
            #expect(Set(ids).count == 16_000, "nothing missing")
            // Exactly once. (It showed one entry again per kill after the first, under load or
            // not: `ReceiptLog.clear` opened the record without O_APPEND, so after the first
            // recovery each later record began with a hole of NULs and its first line was lost.)
            var seen = Set<String>()
            let repeated = ids.filter { !seen.insert($0).inserted }
            if !repeated.isEmpty {
                // Which process sent each copy, and when (the journal's own fields): the same
                // PID twice points below the sink (libsystemd, journald), two PIDs at the receipts.
                let copies = try JournaldHarness.read(["SYSLOG_IDENTIFIER=\(identifier)"]).filter {
                    JournaldHarness.text($0["OPENAI_AUDIT_ID"]).map(Set(repeated).contains) ?? false
                }.map { entry in
                    ["OPENAI_AUDIT_ID", "_PID", "__REALTIME_TIMESTAMP", "__CURSOR"].map {
                        "\($0)=\(JournaldHarness.text(entry[$0]) ?? "-")"
                    }.joined(separator: " ")
                }
                print(
                    "killNineMidBatchIntoTheJournal: repeated entries \(repeated); killed PIDs \(killed); copies:\n"
                        + copies.joined(separator: "\n"))
            }
            #expect(repeated.isEmpty, "each entry exactly once: \(repeated.count) repeated")
        }
    }

    /// A journald that stops reading (SIGSTOP: its socket is there and takes a connection, and
    /// nothing drains it) freezes nothing: while the journal's batch is blocked the watchdog is
    /// still fed, SIGTERM exits 0 within the sink's 30 s send timeout, the batch fails after it
    /// and is retried, and the file sink beside it gets every event. Once journald reads
    /// again, every event is in the journal once.
    @Test func aJournalThatStopsReadingFreezesNothing() async throws {
        try await JournaldHarness.shared.start()
        try await DaemonHarness.with { harness async throws in
            let identifier = "auditd-test-\(UUID().uuidString.prefix(8))"
            let file = harness.directory + "/audit.json"
            func lines() -> [String] {
                ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            }
            harness.simulator.addEvents(count: 3000, from: Self.now - 7200, to: Self.now - 60)
            try harness.writeConfig(
                poll: "  interval: 1s\n  start_at: -3h",
                extra: """
                    sinks:
                      - type: file
                        path: \(file)
                      - type: journald
                        identifier: \(identifier)
                    """)
            let listener = try NotifyListener(directory: harness.directory)
            defer { listener.stop() }
            try await JournaldHarness.shared.signal(SIGSTOP)
            do {
                // A batch blocked in the journal's send, the file's part of it written.
                let daemon = try harness.launch(
                    ["run", "--config", harness.configPath],
                    environment: ["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "2000000"])
                try await harness.waitFor("the journal's batch to block") {
                    lines().count >= 1000 && Self.blockedSending(daemon.processIdentifier)
                }
                let blocked = ContinuousClock.now
                try await Task.sleep(for: .seconds(5))
                let pings = listener.times(of: "WATCHDOG=1").filter { $0 > blocked }.count
                #expect(pings >= 3, "the watchdog is fed while the journal blocks: \(pings) pings in 5 s")
                kill(daemon.processIdentifier, SIGTERM)
                #expect(try await DaemonHarness.wait(daemon, timeout: .seconds(45)) == 0, "\(harness.stderr)")
                #expect(
                    ContinuousClock.now - blocked < .seconds(40), "SIGTERM ended the run within the send timeout")
                #expect(harness.stderr.contains("journald took no entry for"), "\(harness.stderr)")
                #expect(harness.stderr.contains("the batch is retried"))

                // Still frozen: the file gets everything; the journal's sink sits out. (The first
                // run may have written all of it before it stopped: the second is waited for
                // until it is up, so that its SIGTERM is never one that comes before its handler.)
                let started = harness.stderr.components(separatedBy: "openai-auditd: started").count
                let again = try harness.launch(["run", "--config", harness.configPath])
                try await harness.waitFor("the second run to start") {
                    harness.stderr.components(separatedBy: "openai-auditd: started").count > started
                }
                try await harness.waitFor("the file to hold all 3000", timeout: .seconds(120)) {
                    lines().count >= 3000
                }
                #expect(again.isRunning)
                kill(again.processIdentifier, SIGTERM)
                #expect(try await DaemonHarness.wait(again, timeout: .seconds(45)) == 0, "\(harness.stderr)")
            } catch {
                try await JournaldHarness.shared.signal(SIGCONT)
                throw error
            }
            try await JournaldHarness.shared.signal(SIGCONT)
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 0, "\(harness.stderr)")
            let written = lines().compactMap {
                (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["id"] as? String
            }
            #expect(written.count == 3000 && Set(written).count == 3000, "the file: each once")
            let ids = try journalIDs(identifier)
            #expect(ids.count == 3000 && Set(ids).count == 3000, "the journal: each once, \(ids.count) entries")
        }
    }
}
