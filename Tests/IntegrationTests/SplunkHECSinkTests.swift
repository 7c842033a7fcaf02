import AuditSimulator
import Foundation
import Testing

/// The binary with a `splunk_hec` sink against `scripts/fake-splunk-hec.py`, a HEC written
/// from Splunk's documentation: acknowledgements late, lost and forgotten once answered,
/// wrong tokens, busy servers, bodies too large, and `kill -9` mid-batch.
@Suite struct SplunkHECSinkTests {
    static let now = Int64(Date().timeIntervalSince1970)
    static let token = "hec-token-0123456789abcdef"

    /// A fake HEC (its arguments after the index path) and the daemon's harness.
    func withHEC(
        _ arguments: [String] = [], _ body: (DaemonHarness, ToolProcess, String) async throws -> Void
    ) async throws {
        try await DaemonHarness.with { harness async throws in
            let index = harness.directory + "/hec-index.jsonl"
            let hec = try ToolProcess(
                "fake-splunk-hec.py", [index, "--token", Self.token, "--log", harness.fakeLog] + arguments)
            defer { hec.stop() }
            try await body(harness, hec, index)
        }
    }

    func config(_ hec: ToolProcess, _ extra: String = "", poll: String = "  interval: 1s\n  start_at: -1d") -> (
        String, String
    ) {
        (
            poll,
            """
            sinks:
              - type: splunk_hec
                url: http://127.0.0.1:\(hec.port)
                index: openai
            \(extra)
            """
        )
    }

    func write(_ harness: DaemonHarness, _ hec: ToolProcess, _ extra: String = "", poll: String? = nil) throws {
        let (defaultPoll, sinks) = config(hec, extra)
        try harness.writeConfig(poll: poll ?? defaultPoll, extra: sinks)
    }

    static var environment: [String: String] { ["SPLUNK_HEC_TOKEN": token] }

    /// The HEC objects the fake indexed, in order.
    static func indexed(_ path: String) -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return data.split(separator: UInt8(ascii: "\n")).compactMap {
            try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any]
        }
    }

    static func ids(_ path: String) -> [String] {
        indexed(path).compactMap { ($0["event"] as? [String: Any])?["id"] as? String }
    }

    /// `once` exits 0 with each of `ids` in the index once.
    func onceIndexesEachOnce(_ ids: [String], _ harness: DaemonHarness, _ index: String) async throws {
        let status = try await harness.run(["once", "--config", harness.configPath], environment: Self.environment)
        #expect(status == 0, "\(harness.stderr)")
        #expect(Self.ids(index).sorted() == ids.sorted(), "each event once")
    }

    /// Slow acknowledgements are waited for, not answered with a resend: every event is in
    /// the index once, whole, its `time` its `effective_at`, with the indexed fields.
    @Test func everyEventIsIndexedOnceWholeWithItsTime() async throws {
        try await withHEC(["--ack-delay", "1.5"]) { harness, hec, index in
            let ids = harness.simulator.addEvents(count: 300, from: Self.now - 3000, to: Self.now - 60)
            try write(harness, hec, "    sourcetype: openai:audit:test\n    host: auditd-test-host")
            try await onceIndexesEachOnce(ids, harness, index)
            let objects = Self.indexed(index)
            let served = try harness.servedEvents()
            var compared = 0
            for object in objects {
                let event = try #require(object["event"] as? [String: Any])
                let id = try #require(event["id"] as? String)
                #expect((object["time"] as? NSNumber)?.int64Value == (event["effective_at"] as? NSNumber)?.int64Value)
                #expect(object["sourcetype"] as? String == "openai:audit:test")
                #expect(object["source"] as? String == "openai-auditd")
                #expect(object["host"] as? String == "auditd-test-host")
                #expect(object["index"] as? String == "openai")
                let fields = try #require(object["fields"] as? [String: Any])
                #expect(fields["openai_event_type"] as? String == event["type"] as? String)
                if let original = served[id] {
                    let whole = try JSONSerialization.jsonObject(with: Data(original.json)) as? NSDictionary
                    #expect(NSDictionary(dictionary: event) == whole)
                    compared += 1
                }
            }
            #expect(compared == 100)
            #expect(!harness.stderr.contains("did not acknowledge"), "\(harness.stderr)")
            #expect(!harness.stderr.contains(Self.token))
        }
    }

    /// An indexer that loses a request (its ack never becomes true): after `ack_timeout` its
    /// events are sent again, and the index ends with every event once.
    @Test func aLostRequestIsSentAgainAfterTheAckTimeout() async throws {
        try await withHEC(["--lose", "1"]) { harness, hec, index in
            let ids = harness.simulator.addEvents(count: 50, from: Self.now - 600, to: Self.now - 60)
            try write(harness, hec, "    ack_timeout: 2s")
            try await onceIndexesEachOnce(ids, harness, index)
            #expect(harness.stderr.contains("Splunk did not acknowledge a request within ack_timeout"))
            #expect(harness.fakeLines().contains { $0.hasSuffix(" lost") })
        }
    }

    /// Splunk restarting mid-batch loses what it had not indexed and gives ack ids from 0
    /// again: a request whose id a later one got is sent again, never taken as indexed on the
    /// later one's word, and the others are sent again after `ack_timeout`; each event once.
    @Test func splunkRestartingMidBatchLosesNothing() async throws {
        try await withHEC(["--ack-delay", "1", "--restart-after", "2"]) { harness, hec, index in
            let ids = harness.simulator.addEvents(count: 400, from: Self.now - 3000, to: Self.now - 60)
            try write(harness, hec, "    max_request_bytes: 64KiB\n    ack_timeout: 3s")
            try await onceIndexesEachOnce(ids, harness, index)
            #expect(harness.fakeLines().contains("restart"))
            #expect(
                harness.stderr.contains("Splunk gave an ack id it had given an earlier request"), "\(harness.stderr)")
        }
    }

    /// Something else answering 200 on the way (a load balancer's maintenance page) is not
    /// taken for Splunk's success: nothing counts as delivered, and the position holds.
    @Test(arguments: [true, false])
    func aTwoHundredThatIsNotHECsDeliversNothing(acknowledgements: Bool) async throws {
        try await withHEC(["--not-hec"]) { harness, hec, index in
            harness.simulator.addEvents(count: 5, from: Self.now - 100)
            try write(harness, hec, acknowledgements ? "" : "    acknowledgements: false")
            let status = try await harness.run(["once", "--config", harness.configPath], environment: Self.environment)
            #expect(status == 74, "\(harness.stderr)")
            #expect(harness.stderr.contains("the answer is not HEC's (HTTP 200: <html>"), "\(harness.stderr)")
            #expect(harness.delivered() == 0)
        }
    }

    /// Busy (503, code 9) is retried with backoff; a body Splunk finds too large (413) is
    /// sent in halves; without gzip as with it.
    @Test(arguments: ["busy", "too-large"])
    func refusalsForNowAreRetriedAndLargeRequestsSplit(_ refusal: String) async throws {
        let arguments = refusal == "busy" ? ["--busy", "2"] : ["--max-content-length", "30000"]
        try await withHEC(arguments) { harness, hec, index in
            let ids = harness.simulator.addEvents(count: 120, from: Self.now - 600, to: Self.now - 60)
            try write(harness, hec, refusal == "busy" ? "" : "    gzip: false")
            try await onceIndexesEachOnce(ids, harness, index)
            let lines = harness.fakeLines()
            if refusal == "busy" {
                #expect(lines.count { $0 == "event 503 9" } == 2)
                #expect(harness.stderr.contains("Splunk refused the request for now, retrying"))
            } else {
                #expect(lines.contains("event 413"))
                #expect(lines.count { $0.hasPrefix("event 200") } > 2, "\(lines)")
            }
        }
    }

    /// What is wrong with the token or its acknowledgement setting is named by `check` (exit
    /// 74) and by a batch, and the token itself is never shown.
    @Test(arguments: ["wrong-token", "ack-off-for-token", "ack-off-here"])
    func tokenProblemsAreNamed(_ problem: String) async throws {
        let arguments = problem == "ack-off-for-token" ? ["--no-ack"] : []
        try await withHEC(arguments) { harness, hec, index in
            harness.simulator.addEvents(count: 5, from: Self.now - 100)
            try write(harness, hec, problem == "ack-off-here" ? "    acknowledgements: false" : "")
            let environment = problem == "wrong-token" ? ["SPLUNK_HEC_TOKEN": "not-the-token-at-all"] : Self.environment
            let status = try await harness.run(["check", "--config", harness.configPath], environment: environment)
            let expected =
                switch problem {
                case "wrong-token": "Splunk does not accept the HEC token (wrong or deleted) (HTTP 403, code 4"
                case "ack-off-for-token": "indexer acknowledgement is off for the token"
                default: "the token has indexer acknowledgement on but acknowledgements is false here"
                }
            // ack-off-here: the token wants a channel and this sink sends none (code 10).
            #expect(status == 74, "\(harness.stderr)")
            #expect(harness.stderr.contains(expected), "\(harness.stderr)")
            #expect(!harness.stderr.contains("not-the-token-at-all"))
            #expect(!harness.stderr.contains(Self.token))
            #expect(Self.ids(index).isEmpty)
        }
    }

    /// kill -9 three times while batches wait on their acknowledgements: each new process asks
    /// Splunk about what the last one sent, on the same channel, before it sends anything;
    /// every event ends in the index exactly once. The fake holds ack queries 3, 10 and 20
    /// unanswered, so each kill lands while requests are awaited, however slow the machine.
    @Test func killNineThreeTimesMidBatchLeavesEveryEventOnce() async throws {
        try await withHEC(["--ack-delay", "1", "--stall-acks", "3,10,20"]) { harness, hec, index in
            let ids = harness.simulator.addEvents(count: 3000, from: Self.now - 4 * 86_400, to: Self.now - 60)
            try write(
                harness, hec, "    max_request_bytes: 200KiB\n    timeout: 2m",
                poll: "  interval: 1s\n  start_at: -5d\n  max_window_events: 1000")
            for round in 1...3 {
                let daemon = try harness.launch(["run", "--config", harness.configPath], environment: Self.environment)
                try await harness.waitFor("ack query held in round \(round)", timeout: .seconds(120)) {
                    harness.fakeLines().count { $0 == "ack stalled" } >= round
                }
                kill(daemon.processIdentifier, SIGKILL)
                _ = try await DaemonHarness.wait(daemon, timeout: .seconds(10))
            }
            #expect(Self.ids(index).count < ids.count, "the kills landed mid-stream")
            let last = try harness.launch(["run", "--config", harness.configPath], environment: Self.environment)
            try await harness.waitFor("every event in the index", timeout: .seconds(240)) {
                Set(Self.ids(index)).count >= ids.count && harness.delivered() == ids.count
            }
            kill(last.processIdentifier, SIGTERM)
            #expect(try await DaemonHarness.wait(last, timeout: .seconds(30)) == 0)
            let indexed = Self.ids(index)
            #expect(Set(indexed) == Set(ids), "nothing lost")
            #expect(indexed.count == ids.count, "nothing twice: \(indexed.count - Set(indexed).count) repeated")
            #expect(harness.stderr.contains("sink already holds events of an interrupted batch"))
            for object in Self.indexed(index).prefix(50) {
                let event = try #require(object["event"] as? [String: Any])
                #expect((object["time"] as? NSNumber)?.int64Value == (event["effective_at"] as? NSNumber)?.int64Value)
            }
        }
    }
}
