import AuditSimulator
import Foundation
import Testing

/// The binary with a journald sink, against the simulator and a real systemd-journald.
@Suite(.serialized) struct JournaldSinkTests {
    static let now = Int64(Date().timeIntervalSince1970)

    func journaldConfig(_ harness: DaemonHarness, identifier: String, poll: String) throws {
        try harness.writeConfig(
            poll: poll, extra: "sinks:\n  - type: journald\n    identifier: \(identifier)")
    }

    @Test func everyEventIsAQueryableJournalEntryWithItsWholeJSON() async throws {
        try await JournaldHarness.shared.start()
        try await DaemonHarness.with { harness async throws in
            let identifier = "auditd-test-\(UUID().uuidString.prefix(8))"
            harness.simulator.addEvents(count: 200, from: Self.now - 3000, to: Self.now - 100, tricky: true)
            harness.simulator.addEvents(count: 2, from: Self.now - 50, types: ["api_key.created"], large: true)
            let raw: JSONValue = .object([
                ("id", .string("audit_log-handmade1")), ("type", .string("login.failed")),
                ("effective_at", .integer(Self.now - 40)),
                (
                    "actor",
                    .object([
                        ("type", .string("session")),
                        (
                            "session",
                            .object([
                                ("user", .object([("id", .string("user-x")), ("email", .string("zoë@example.com"))])),
                                ("ip_address", .string("198.51.100.9")),
                            ])
                        ),
                    ])
                ),
                (
                    "login.failed",
                    .object([("error_code", .string("bad")), ("error_message", .string("line 1\nline \"2\" ] | = é"))])
                ),
                ("unknown_field", .array([.null, .bool(true), .object([])])),
            ])
            _ = try harness.simulator.addRaw([raw])
            try journaldConfig(harness, identifier: identifier, poll: "  start_at: -2h")
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 0, "\(harness.stderr)")

            let entries = try await JournaldHarness.shared.entries(["SYSLOG_IDENTIFIER=\(identifier)"])
            #expect(entries.count == 203)
            let served = try harness.servedEvents()
            var large = 0
            var projectNames = 0
            for entry in entries {
                let json = try #require(JournaldHarness.text(entry["OPENAI_EVENT_JSON"]))
                let event = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? NSDictionary)
                let id = try #require(JournaldHarness.text(entry["OPENAI_AUDIT_ID"]))
                #expect(event["id"] as? String == id)
                #expect(JournaldHarness.text(entry["MESSAGE_ID"]) == "3f6c1d0e8b7a4e2f9c5d4b3a2e1f0d9c")
                #expect(JournaldHarness.text(entry["OPENAI_EVENT_TYPE"]) == event["type"] as? String)
                #expect(JournaldHarness.text(entry["MESSAGE"])?.hasPrefix(event["type"] as? String ?? "?") == true)
                #expect(["4", "5", "6"].contains(JournaldHarness.text(entry["PRIORITY"]) ?? ""))
                if let original = served[id] {
                    let parsed = try JSONSerialization.jsonObject(with: Data(original.json)) as? NSDictionary
                    #expect(parsed == event, "byte-for-byte in meaning")
                }
                // Field values are binary-safe: a project name with a newline comes back whole.
                if let project = event["project"] as? NSDictionary {
                    #expect(JournaldHarness.text(entry["OPENAI_PROJECT_NAME"]) == project["name"] as? String)
                    if (project["name"] as? String)?.contains("\n") == true { projectNames += 1 }
                }
                if json.utf8.count > 100_000 { large += 1 }
            }
            #expect(large == 2, "100 KB events arrive whole")
            #expect(projectNames > 0, "some project names had a newline")

            // The queries an operator runs.
            let handmade = try await JournaldHarness.shared.entries(["OPENAI_AUDIT_ID=audit_log-handmade1"])
            #expect(handmade.count == 1)
            #expect(JournaldHarness.text(handmade.first?["OPENAI_ACTOR_EMAIL"]) == "zoë@example.com")
            #expect(JournaldHarness.text(handmade.first?["PRIORITY"]) == "4")
            let handmadeJSON = try #require(JournaldHarness.text(handmade.first?["OPENAI_EVENT_JSON"]))
            let handmadeObject = try #require(
                try JSONSerialization.jsonObject(with: Data(handmadeJSON.utf8)) as? NSDictionary)
            let rawObject = try #require(try JSONSerialization.jsonObject(with: Data(raw.bytes)) as? NSDictionary)
            #expect(handmadeObject == rawObject, "newlines, quotes, non-ASCII and unknown fields survive")
            let byEmail = try await JournaldHarness.shared.entries([
                "SYSLOG_IDENTIFIER=\(identifier)", "OPENAI_ACTOR_EMAIL=zoë@example.com",
            ])
            #expect(byEmail.count == 1)
            let keysCreated = try await JournaldHarness.shared.entries([
                "SYSLOG_IDENTIFIER=\(identifier)", "OPENAI_EVENT_TYPE=api_key.created",
            ])
            #expect(keysCreated.count >= 2)
            #expect(keysCreated.allSatisfy { JournaldHarness.text($0["OPENAI_EVENT_TYPE"]) == "api_key.created" })
        }
    }

    @Test func aTwentyThousandEventCatchUpArrivesComplete() async throws {
        try await JournaldHarness.shared.start()
        try await DaemonHarness.with { harness async throws in
            let identifier = "auditd-test-\(UUID().uuidString.prefix(8))"
            harness.simulator.addEvents(count: 20_000, from: Self.now - 5 * 86_400, to: Self.now - 60)
            try journaldConfig(harness, identifier: identifier, poll: "  start_at: -6d\n  max_window_events: 2000")
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 0, "\(harness.stderr)")
            let entries = try await JournaldHarness.shared.entries(["SYSLOG_IDENTIFIER=\(identifier)"])
            let ids = entries.compactMap { JournaldHarness.text($0["OPENAI_AUDIT_ID"]) }
            #expect(ids.count == 20_000)
            #expect(Set(ids).count == 20_000)
        }
    }

    @Test func journaldStoppedMidRunHoldsTheStateAndEverythingArrivesOnceAfter() async throws {
        try await JournaldHarness.shared.start()
        try await DaemonHarness.with { harness async throws in
            let identifier = "auditd-test-\(UUID().uuidString.prefix(8))"
            harness.simulator.addEvents(count: 30, from: Self.now - 600, to: Self.now - 300)
            try journaldConfig(harness, identifier: identifier, poll: "  interval: 1s\n  start_at: -1h")
            let daemon = try harness.launch(["run", "--config", harness.configPath])
            try await harness.waitFor("the first 30 entries") { harness.delivered() == 30 }
            try await JournaldHarness.shared.stop()
            harness.simulator.addEvents(count: 20, from: Self.now - 200, to: Self.now - 100)
            try await harness.waitFor("the daemon to notice") { harness.stderr.contains("journald is not running") }
            #expect(harness.delivered() == 30, "the state did not move")
            try await JournaldHarness.shared.start()
            try await harness.waitFor("the other 20") { harness.delivered() == 50 }
            kill(daemon.processIdentifier, SIGTERM)
            #expect(try await DaemonHarness.wait(daemon, timeout: .seconds(20)) == 0)
            let ids = try await JournaldHarness.shared.entries(["SYSLOG_IDENTIFIER=\(identifier)"]).compactMap {
                JournaldHarness.text($0["OPENAI_AUDIT_ID"])
            }
            #expect(ids.count == 50)
            #expect(Set(ids).count == 50, "once each")
        }
    }

    @Test func theCatalogExplainsAnEntryWithJournalctlX() async throws {
        try await JournaldHarness.shared.start()
        try await DaemonHarness.with { harness async throws in
            let identifier = "auditd-test-\(UUID().uuidString.prefix(8))"
            let id = try #require(
                harness.simulator.addEvents(count: 1, from: Self.now - 30, types: ["api_key.created"]).first)
            try journaldConfig(harness, identifier: identifier, poll: "  start_at: -1h")
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 0)
            _ = try await JournaldHarness.shared.entries(["OPENAI_AUDIT_ID=\(id)"])
            // scripts/test-namespace.sh compiled packaging/openai-auditd.catalog into the catalog database.
            let output = String(
                decoding: try JournaldHarness.journalctl([
                    "-D", try JournaldHarness.directory(), "-x", "--no-pager", "OPENAI_AUDIT_ID=\(id)",
                ]),
                as: UTF8.self)
            #expect(output.contains("OpenAI audit event api_key.created (\(id))"), "\(output)")
            #expect(output.contains("OPENAI_EVENT_JSON"))
        }
    }

    /// Under the journal's stream (systemd-cat, with JOURNAL_STREAM set as systemd sets it
    /// for a unit), the daemon's own lines carry their priority and its identifier, apart from
    /// the event entries.
    @Test func theDaemonsOwnLinesReachTheJournalAtTheirPriorityApartFromTheEvents() async throws {
        try await JournaldHarness.shared.start()
        try await DaemonHarness.with { harness async throws in
            harness.simulator.addEvents(count: 5, from: Self.now - 100, types: ["api_key.created"])
            try harness.writeConfig(poll: "  start_at: -1h", extra: "sinks:\n  - type: journald")
            func underJournal(_ environment: [String: String] = [:]) async throws -> (status: Int32, pid: Int32) {
                // systemd-cat connects stdout and stderr to the journal and execs the command.
                let process = try harness.launch(
                    [
                        "-t", "openai-auditd", "/bin/sh", "-c",
                        #"JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$0" "$@""#,
                        try DaemonHarness.binary(), "once", "--config", harness.configPath,
                    ], executable: "/usr/bin/systemd-cat", environment: environment)
                return (try await DaemonHarness.wait(process, timeout: .seconds(60)), process.processIdentifier)
            }
            let good = try await underJournal()
            #expect(good.status == 0)
            let wrong = try await underJournal(["OPENAI_ADMIN_KEY": "sk-admin-wrong-0000000000000000000000"])
            #expect(wrong.status == 77)
            func ownLines(_ pid: Int32) throws -> [[String: Any]] {
                try JournaldHarness.read(["SYSLOG_IDENTIFIER=openai-auditd", "_PID=\(pid)"])
            }
            let lines = try ownLines(good.pid)
            let caughtUp = try #require(
                lines.first { JournaldHarness.text($0["MESSAGE"])?.hasPrefix("caught up") == true })
            #expect(JournaldHarness.text(caughtUp["PRIORITY"]) == "6", "info")
            let firstRun = try #require(
                lines.first { JournaldHarness.text($0["MESSAGE"])?.hasPrefix("first run") == true })
            #expect(JournaldHarness.text(firstRun["PRIORITY"]) == "5", "notice")
            #expect(lines.allSatisfy { $0["OPENAI_AUDIT_ID"] == nil }, "no event among the daemon's own lines")
            let rejected = try #require(
                try ownLines(wrong.pid).first {
                    JournaldHarness.text($0["MESSAGE"])?.contains("rejected the admin key") == true
                })
            #expect(Int(JournaldHarness.text(rejected["PRIORITY"]) ?? "") ?? 9 <= 3, "an error, for journalctl -p err")
            #expect(JournaldHarness.text(rejected["MESSAGE"])?.hasPrefix("<") == false, "the prefix was read, not kept")
            // The events are under their own identifier.
            let served = Set(try harness.servedEvents().keys)
            let events = try JournaldHarness.read(["SYSLOG_IDENTIFIER=openai-audit", "_PID=\(good.pid)"]).compactMap {
                JournaldHarness.text($0["OPENAI_AUDIT_ID"])
            }.filter { served.contains($0) }
            #expect(events.count == 5)
        }
    }

    @Test func withoutJournaldTheDaemonRefusesToStart() async throws {
        try await JournaldHarness.shared.stop()
        try await DaemonHarness.with { harness async throws in
            try journaldConfig(harness, identifier: "auditd-test-absent", poll: "  start_at: -1h")
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 74)
            #expect(harness.stderr.contains("sink journald is closed"))
        }
        try await JournaldHarness.shared.start()
    }
}
