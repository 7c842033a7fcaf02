import AuditShipper
import Foundation
import Testing

/// The state file against operators and hostile disks, with the binary as a process: files of
/// an earlier version, sinks added and removed, a lookback changed, filters reordered, links
/// planted where the daemon writes.
@Suite struct StateFileTests {
    static let now = Int64(Date().timeIntervalSince1970)

    /// Two stdout sinks under their own names: every event they both take is two lines.
    static let twoSinks = "sinks:\n  - type: stdout\n    name: a\n  - type: stdout\n    name: b"

    func ids(_ harness: DaemonHarness) throws -> [String] {
        try harness.deliveredIDs()
    }

    @Test func aVersionOneStateIsReadEverySinkStartsFromItAndItIsWrittenAsTheCurrentVersion() async throws {
        try await DaemonHarness.with { harness async throws in
            let old = harness.simulator.addEvents(count: 5, from: Self.now - 700, to: Self.now - 500)
            let recent = old.map { "\"\($0)\":\(Self.now - 500)" }.joined(separator: ",")
            let v1 = """
                {"version":1,"source":{"base_url":"\(harness.simulator.baseURL)","organization":null,"filters":{"event_types":[],"project_ids":[],"actor_ids":[],"actor_emails":[],"resource_ids":[]}},\
                "start_at":\(Self.now - 3600),"complete_before":\(Self.now - 500),"delivered":5,"updated_at":\(Self.now - 400),"recent":{\(recent)}}
                """
            try v1.write(toFile: harness.statePath, atomically: true, encoding: .utf8)
            let new = harness.simulator.addEvents(count: 4, from: Self.now - 300, to: Self.now - 100)
            try harness.writeConfig(poll: "  start_at: -1h", extra: Self.twoSinks)
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 0, "\(harness.stderr)")
            #expect(harness.stderr.contains("state file of an earlier version"))
            let delivered = try ids(harness)
            #expect(delivered.sorted() == (new + new).sorted(), "each sink: only what version 1 had not delivered")
            #expect((try harness.state()["version"] as? NSNumber)?.intValue == 3)
            #expect(harness.delivered(sink: "a") == 9 && harness.delivered(sink: "b") == 9)
            #expect(
                try await harness.run(["state", "show", "--config", harness.configPath]) == 0, "\(harness.stderr)")
            let shown = try String(contentsOfFile: harness.stdoutPath, encoding: .utf8)
            #expect(shown.contains("sink a:") && shown.contains("sink b:") && shown.contains("last error:      none"))
        }
    }

    @Test func aSinkAddedStartsWhereTheOthersAreAndARemovedOneIsDroppedWithANotice() async throws {
        try await DaemonHarness.with { harness async throws in
            harness.simulator.addEvents(count: 20, from: Self.now - 3000, to: Self.now - 100)
            try harness.writeConfig(poll: "  start_at: -1h", extra: "sinks:\n  - type: stdout\n    name: a")
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 0)
            #expect(harness.lineCount() == 20)
            let latest = harness.simulator.addEvents(count: 2, from: Self.now - 50)
            try harness.writeConfig(poll: "  start_at: -1h", extra: Self.twoSinks)
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 0, "\(harness.stderr)")
            #expect(Array(try ids(harness).dropFirst(20)).sorted() == (latest + latest).sorted(), "b: no flood")
            #expect(harness.stderr.contains("sink has no position yet, starting it"))
            try harness.writeConfig(poll: "  start_at: -1h", extra: "sinks:\n  - type: stdout\n    name: b")
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 0)
            #expect(harness.stderr.contains("sink is no longer configured, its position is dropped"))
            let sinks = try #require(try harness.state()["sinks"] as? [String: Any])
            #expect(sinks.keys.sorted() == ["b"])
            #expect(harness.lineCount() == 24)
        }
    }

    @Test func raisingTheLookbackByRestartReSendsNothingAndLoweringItPrunes() async throws {
        try await DaemonHarness.with { harness async throws in
            harness.simulator.addEvents(count: 300, from: Self.now - 3 * 3600, to: Self.now - 10)
            try harness.writeConfig(poll: "  start_at: -4h\n  lookback: 10m")
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 0)
            #expect(harness.lineCount() == 300)
            let raised = ["OPENAI_AUDITD_POLL_LOOKBACK": "2h"]
            #expect(try await harness.run(["once", "--config", harness.configPath], environment: raised) == 0)
            #expect(harness.lineCount() == 300, "a longer lookback re-sends nothing")
            let recentBefore = (try harness.position("stdout")["recent"] as? [String: Any])?.count ?? 0
            let lowered = ["OPENAI_AUDITD_POLL_LOOKBACK": "1m"]
            #expect(try await harness.run(["once", "--config", harness.configPath], environment: lowered) == 0)
            let recentAfter = (try harness.position("stdout")["recent"] as? [String: Any])?.count ?? 0
            #expect(recentAfter < recentBefore, "a shorter lookback prunes")
            #expect(harness.lineCount() == 300)
        }
    }

    @Test func filtersWrittenInAnotherOrderAreTheSameSource() async throws {
        try await DaemonHarness.with { harness async throws in
            harness.simulator.addEvents(count: 10, from: Self.now - 100, types: ["login.failed", "api_key.created"])
            try harness.writeConfig(
                poll: "  start_at: -1h", api: "  filters:\n    event_types: [login.failed, api_key.created]")
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 0)
            try harness.writeConfig(
                poll: "  start_at: -1h",
                api: "  filters:\n    event_types: [api_key.created, login.failed, api_key.created]")
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 0, "\(harness.stderr)")
            #expect(harness.lineCount() == 10)
        }
    }

    /// A link planted at the lock or the state file: 73 with a message naming it, and the file
    /// it points to is never opened for writing, truncated or chowned (the test runs as root).
    @Test(arguments: ["state.json.lock", "state.json", "state.json.updates", "state.json.receipts.journald"])
    func aSymbolicLinkWhereTheStateLivesIsRefusedWith73(planted: String) async throws {
        try await DaemonHarness.with { harness async throws in
            let target = harness.directory + "/precious"
            try "do not touch\n".write(toFile: target, atomically: true, encoding: .utf8)
            try FileManager.default.createSymbolicLink(
                atPath: harness.directory + "/" + planted, withDestinationPath: target)
            // journald's receipts are the third file; whether journald runs does not matter.
            try harness.writeConfig(poll: "  start_at: -1h", extra: "sinks:\n  - type: journald")
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 73)
            #expect(harness.stderr.contains("\(harness.directory)/\(planted) is a symbolic link"))
            #expect(try String(contentsOfFile: target, encoding: .utf8) == "do not touch\n")
            let attributes = try FileManager.default.attributesOfItem(atPath: target)
            #expect((attributes[.ownerAccountID] as? NSNumber)?.uint32Value == getuid())
        }
    }
}
