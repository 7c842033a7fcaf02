import AuditShipper
import AuditSimulator
import Foundation
import Testing

/// The binary with an `elasticsearch` sink against `scripts/fake-elasticsearch.py`, written
/// from Elastic's `_bulk` documentation: per-item 201, 409, 429, 503 and 400, whole requests
/// refused or too large, wrong credentials, several URLs, and `kill -9` mid-batch.
@Suite struct ElasticsearchSinkTests {
    static let now = Int64(Date().timeIntervalSince1970)
    static let apiKey = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="

    func withElasticsearch(
        _ arguments: [String] = [], _ body: (DaemonHarness, ToolProcess, String) async throws -> Void
    ) async throws {
        try await DaemonHarness.with { harness async throws in
            let index = harness.directory + "/es-index.jsonl"
            let elastic = try ToolProcess(
                "fake-elasticsearch.py", [index, "--api-key", Self.apiKey, "--log", harness.fakeLog] + arguments)
            defer { elastic.stop() }
            try Self.apiKey.write(toFile: harness.directory + "/es-key", atomically: true, encoding: .utf8)
            try await body(harness, elastic, index)
        }
    }

    func write(
        _ harness: DaemonHarness, url: String, _ extra: String = "", poll: String = "  interval: 1s\n  start_at: -1d"
    ) throws {
        try harness.writeConfig(
            poll: poll,
            extra: """
                sinks:
                  - type: elasticsearch
                    name: elastic
                    \(url.hasPrefix("[") ? "urls" : "url"): \(url)
                    api_key_file: \(harness.directory)/es-key
                \(extra)
                """)
    }

    /// The documents the fake holds, in order.
    static func documents(_ path: String) -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return data.split(separator: UInt8(ascii: "\n")).compactMap {
            try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any]
        }
    }

    static func ids(_ path: String) -> [String] { documents(path).compactMap { $0["_id"] as? String } }

    func once(_ harness: DaemonHarness) async throws -> Int32 {
        try await harness.run(["once", "--config", harness.configPath])
    }

    /// Each event once, keyed by its id, whole, with `@timestamp` its `effective_at`, through
    /// the pipeline named.
    @Test func everyEventIsIndexedOnceWholeWithItsTimestamp() async throws {
        try await withElasticsearch { harness, elastic, index in
            let ids = harness.simulator.addEvents(count: 300, from: Self.now - 3000, to: Self.now - 60)
            try write(
                harness, url: "http://127.0.0.1:\(elastic.port)",
                "    index: logs-openai.audit-default\n    pipeline: logs-openai.audit@custom")
            #expect(try await once(harness) == 0, "\(harness.stderr)")
            let documents = Self.documents(index)
            #expect(Self.ids(index).sorted() == ids.sorted(), "each event once")
            let served = try harness.servedEvents()
            var compared = 0
            for document in documents {
                #expect(document["_index"] as? String == "logs-openai.audit-default")
                #expect(document["pipeline"] as? String == "logs-openai.audit@custom")
                var source = try #require(document["_source"] as? [String: Any])
                let id = try #require(document["_id"] as? String)
                #expect(source["id"] as? String == id)
                let effectiveAt = try #require((source["effective_at"] as? NSNumber)?.int64Value)
                #expect(source["@timestamp"] as? String == TimeSpec.format(effectiveAt))
                source["@timestamp"] = nil
                if let original = served[id] {
                    let whole = try JSONSerialization.jsonObject(with: Data(original.json)) as? NSDictionary
                    #expect(NSDictionary(dictionary: source) == whole)
                    compared += 1
                }
            }
            #expect(compared == 100)
            #expect(!harness.stderr.contains(Self.apiKey))
        }
    }

    /// One answer with 201s, 409s, 429s and one 400: the 429s alone are sent again, the 409s
    /// count as delivered, the 400 is named and holds the position; with `on_rejected:
    /// dead_letter` it is set aside and the sink goes on.
    @Test func aMixedAnswerIsReadItemByItem() async throws {
        try await DaemonHarness.with { harness async throws in
            let ids = harness.simulator.addEvents(count: 30, from: Self.now - 600, to: Self.now - 60)
            let rejected = ids[17]
            let index = harness.directory + "/es-index.jsonl"
            try Self.apiKey.write(toFile: harness.directory + "/es-key", atomically: true, encoding: .utf8)
            let elastic = try ToolProcess(
                "fake-elasticsearch.py",
                [index, "--api-key", Self.apiKey, "--item-429", "3", "--reject-id", rejected, "--log", harness.fakeLog])
            defer { elastic.stop() }
            try write(harness, url: "http://127.0.0.1:\(elastic.port)")
            #expect(try await once(harness) == 74, "\(harness.stderr)")
            #expect(
                harness.stderr.contains(
                    "Elasticsearch rejected event \(rejected): HTTP 400: document_parsing_exception"))
            #expect(harness.stderr.contains("the position holds until it is fixed"))
            let lines = harness.fakeLines()
            #expect(lines.contains("bulk 200 items=30 201=26 400=1 429=3"), "\(lines)")
            #expect(lines.contains("bulk 200 items=3 201=3"), "the 429s alone, sent again: \(lines)")
            #expect((try harness.position("elastic")["delivered"] as? Int) == 0, "the position held")
            // Again: the 29 held answer 409, which is delivery; the 400 still holds it.
            #expect(try await once(harness) == 74)
            #expect(harness.fakeLines().contains("bulk 200 items=30 400=1 409=29"))
            #expect(Set(Self.ids(index)) == Set(ids).subtracting([rejected]))
            #expect(Self.ids(index).count == 29, "nothing twice")
            // Set aside instead: the sink goes on, the event is kept whole beside the state.
            try write(harness, url: "http://127.0.0.1:\(elastic.port)", "    on_rejected: dead_letter")
            #expect(try await once(harness) == 0, "\(harness.stderr)")
            #expect((try harness.position("elastic")["delivered"] as? Int) == 30)
            let letters = try String(contentsOfFile: harness.statePath + ".dead-letters", encoding: .utf8)
            #expect(letters.contains(rejected) && letters.contains("rejected by elastic: HTTP 400"))
            #expect(letters.split(separator: "\n").count == 1, "only the rejected one; a 409 is delivered")
        }
    }

    /// Refused whole for now (429) is retried; too large (413) is sent in halves; the first
    /// of `urls` refusing connections, the next is used.
    @Test(arguments: ["busy", "too-large", "second-url"])
    func refusedRequestsAreRetriedSplitOrSentElsewhere(_ situation: String) async throws {
        let arguments =
            switch situation {
            case "busy": ["--busy", "2"]
            case "too-large": ["--max-content-length", "30000"]
            default: [String]()
            }
        try await withElasticsearch(arguments) { harness, elastic, index in
            let ids = harness.simulator.addEvents(count: 120, from: Self.now - 600, to: Self.now - 60)
            let closed = try RsyslogHarness.freePort()
            let url =
                situation == "second-url"
                ? "[http://127.0.0.1:\(closed), http://127.0.0.1:\(elastic.port)]" : "http://127.0.0.1:\(elastic.port)"
            try write(harness, url: url, situation == "too-large" ? "    gzip: false" : "")
            #expect(try await once(harness) == 0, "\(harness.stderr)")
            #expect(Self.ids(index).sorted() == ids.sorted(), "each event once")
            let lines = harness.fakeLines()
            switch situation {
            case "busy": #expect(lines.count { $0 == "bulk 429" } == 2)
            case "too-large": #expect(lines.contains("bulk 413") && lines.count { $0.hasPrefix("bulk 200") } > 2)
            default: #expect(lines.contains { $0.hasPrefix("bulk 200") })
            }
        }
    }

    /// Wrong credentials are named by `check` (74), and never shown.
    @Test func wrongCredentialsAreNamed() async throws {
        try await withElasticsearch { harness, elastic, index in
            try "not-the-key-at-all".write(toFile: harness.directory + "/es-key", atomically: true, encoding: .utf8)
            try write(harness, url: "http://127.0.0.1:\(elastic.port)")
            #expect(try await harness.run(["check", "--config", harness.configPath]) == 74)
            #expect(harness.stderr.contains("Elasticsearch does not accept the credentials"), "\(harness.stderr)")
            #expect(!harness.stderr.contains("not-the-key-at-all"))
        }
    }

    /// kill -9 three times mid-stream: what the index held is answered 409 when sent again,
    /// so every event ends in it exactly once. The fake carries out bulk requests 2, 5 and 8
    /// and never answers them, so each kill lands with documents held that the daemon does
    /// not know of, however slow the machine.
    @Test func killNineThreeTimesMidBatchLeavesEveryEventOnce() async throws {
        try await withElasticsearch(["--stall", "2,5,8"]) { harness, elastic, index in
            let ids = harness.simulator.addEvents(count: 3000, from: Self.now - 4 * 86_400, to: Self.now - 60)
            try write(
                harness, url: "http://127.0.0.1:\(elastic.port)", "    max_request_bytes: 200KiB\n    timeout: 2m",
                poll: "  interval: 1s\n  start_at: -5d\n  max_window_events: 1000")
            for round in 1...3 {
                let daemon = try harness.launch(["run", "--config", harness.configPath])
                try await harness.waitFor("a bulk request held in round \(round)", timeout: .seconds(120)) {
                    harness.fakeLines().count { $0 == "bulk stalled" } >= round
                }
                kill(daemon.processIdentifier, SIGKILL)
                _ = try await DaemonHarness.wait(daemon, timeout: .seconds(10))
            }
            #expect(Self.ids(index).count < ids.count, "the kills landed mid-stream")
            let last = try harness.launch(["run", "--config", harness.configPath])
            try await harness.waitFor("every event in the index", timeout: .seconds(240)) {
                harness.delivered() == ids.count
            }
            kill(last.processIdentifier, SIGTERM)
            #expect(try await DaemonHarness.wait(last, timeout: .seconds(30)) == 0)
            let indexed = Self.ids(index)
            #expect(Set(indexed) == Set(ids), "nothing lost")
            #expect(indexed.count == ids.count, "nothing twice")
            #expect(harness.fakeLines().contains { $0.contains("409=") }, "repeats were answered 409")
        }
    }
}
