import AuditSimulator
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `metrics.listen` with the binary as a process: the Prometheus exposition (checked by the
/// real `promtool`), health and readiness through a failing upstream and its recovery, and the
/// answers to paths and methods it does not serve.
@Suite struct MetricsEndpointTests {
    static let now = Int64(Date().timeIntervalSince1970)

    /// `curl` against the endpoint: the status code and the body.

    /// The value of the series `name` (with its labels as written) in an exposition.
    func value(_ exposition: String, _ series: String) -> Double? {
        exposition.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap {
            Double($0.split(separator: " ").last ?? "")
        }
    }

    func promtool(_ exposition: String) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/promtool")
        process.arguments = ["check", "metrics"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        input.fileHandleForWriting.write(Data(exposition.utf8))
        try input.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    @Test func metricsHealthAndReadinessFollowTheDaemon() async throws {
        try await DaemonHarness.with { harness async throws in
            harness.simulator.addEvents(count: 40, from: Self.now - 600, to: Self.now - 100)
            let port = try RsyslogHarness.freePort()
            let base = "http://127.0.0.1:\(port)"
            try harness.writeConfig(
                poll: "  interval: 1s\n  start_at: -1h",
                extra: "sinks:\n  - type: stdout\n    name: out\nmetrics:\n  listen: 127.0.0.1:\(port)")
            let daemon = try harness.launch(["run", "--config", harness.configPath])
            try await harness.waitFor("the first 40 events") { harness.lineCount() == 40 }
            try await harness.waitFor("ready") { (try? DaemonHarness.get(base + "/readyz").status) == 200 }
            #expect(try DaemonHarness.get(base + "/healthz").status == 200)
            let exposition = try DaemonHarness.get(base + "/metrics").body
            let checked = try promtool(exposition)
            #expect(checked.status == 0 && checked.output.isEmpty, "promtool: \(checked.output)")
            #expect(value(exposition, #"openai_auditd_events_sent_total{sink="out"}"#) == 40)
            #expect(value(exposition, #"openai_auditd_sink_errors_total{sink="out"}"#) == 0)
            #expect(value(exposition, #"openai_auditd_build_info{version="0.1.0"}"#) == 1)
            #expect((value(exposition, #"openai_auditd_api_requests_total{code="200"}"#) ?? 0) >= 2)
            #expect(value(exposition, #"openai_auditd_api_requests_total{code="429"}"#) == 0, "known codes from 0")
            let position = try #require(
                value(exposition, #"openai_auditd_sink_position_timestamp_seconds{sink="out"}"#))
            #expect(position >= Double(Self.now - 100 - 1), "the sink's position, as a timestamp")
            for family in [
                "openai_auditd_api_retries_total", "openai_auditd_api_request_duration_seconds",
                "openai_auditd_events_received_total", "openai_auditd_events_oversized_total",
                "openai_auditd_duplicates_dropped_total", "openai_auditd_late_events_total",
                "openai_auditd_newest_event_timestamp_seconds", "openai_auditd_last_success_timestamp_seconds",
                "openai_auditd_cycle_duration_seconds", "openai_auditd_state_writes_total",
            ] {
                #expect(exposition.contains("# TYPE \(family) "), "\(family) is exported from the start")
            }
            #expect(try DaemonHarness.get(base + "/nope").status == 404)
            #expect(try DaemonHarness.get(base + "/metrics", method: "POST").status == 405)
            // The API fails for a while: the loop stays alive, readiness goes.
            harness.simulator.faults.enqueue(.status(500, retryAfter: nil), count: 1000)
            try await harness.waitFor("not ready", timeout: .seconds(30)) {
                let ready = try DaemonHarness.get(base + "/readyz")
                return ready.status == 503 && ready.body.contains("the last successful poll was")
            }
            #expect(try DaemonHarness.get(base + "/healthz").status == 200, "retrying is alive")
            let failing = try DaemonHarness.get(base + "/metrics").body
            #expect((value(failing, #"openai_auditd_api_requests_total{code="500"}"#) ?? 0) > 0)
            #expect((value(failing, "openai_auditd_api_retries_total") ?? 0) > 0)
            harness.simulator.faults.removeAll()
            try await harness.waitFor("ready again", timeout: .seconds(90)) {
                (try? DaemonHarness.get(base + "/readyz").status) == 200
            }
            kill(daemon.processIdentifier, SIGTERM)
            #expect(try await DaemonHarness.wait(daemon, timeout: .seconds(20)) == 0, "\(harness.stderr)")
        }
    }

    /// The shipped alert rules, against the cases in their test file.
    @Test func theAlertRulesPassPromtool() throws {
        let directory = DaemonHarness.root + "/packaging/prometheus"
        for arguments in [
            ["check", "rules", "openai-auditd.rules.yml"], ["test", "rules", "openai-auditd.rules.test.yml"],
        ] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/promtool")
            process.arguments = arguments
            process.currentDirectoryURL = URL(fileURLWithPath: directory)
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0 && text.contains("SUCCESS"), "promtool \(arguments): \(text)")
        }
    }

    /// Debian's Prometheus server scrapes the daemon every second with the shipped rules loaded.
    @Test func aRealPrometheusScrapesTheDaemon() async throws {
        try await DaemonHarness.with { harness async throws in
            harness.simulator.addEvents(count: 25, from: Self.now - 600, to: Self.now - 100)
            let port = try RsyslogHarness.freePort()
            let prometheusPort = try RsyslogHarness.freePort()
            try harness.writeConfig(
                poll: "  interval: 1s\n  start_at: -1h",
                extra: "sinks:\n  - type: stdout\n    name: out\nmetrics:\n  listen: 127.0.0.1:\(port)")
            let daemon = try harness.launch(["run", "--config", harness.configPath])
            try await harness.waitFor("the 25 events") { harness.lineCount() == 25 }
            let directory = harness.directory + "/prometheus"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try """
            global: {scrape_interval: 1s, evaluation_interval: 1s}
            rule_files: [\(DaemonHarness.root)/packaging/prometheus/openai-auditd.rules.yml]
            scrape_configs:
              - job_name: openai-auditd
                static_configs: [{targets: ["127.0.0.1:\(port)"]}]
            """.write(toFile: directory + "/prometheus.yml", atomically: true, encoding: .utf8)
            let prometheus = try harness.launch(
                [
                    "--config.file=\(directory)/prometheus.yml", "--storage.tsdb.path=\(directory)/data",
                    "--web.listen-address=127.0.0.1:\(prometheusPort)",
                ], executable: "/usr/bin/prometheus")
            defer { kill(prometheus.processIdentifier, SIGTERM) }
            /// The result vector of an instant query; nil when Prometheus refused the expression.
            func results(_ expression: String) throws -> [[String: Any]]? {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
                process.arguments = [
                    "-s", "--max-time", "5", "-G", "http://127.0.0.1:\(prometheusPort)/api/v1/query",
                    "--data-urlencode", "query=\(expression)",
                ]
                let output = Pipe()
                process.standardOutput = output
                try process.run()
                let data = output.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                    object["status"] as? String == "success"
                else { return nil }
                return (object["data"] as? [String: Any])?["result"] as? [[String: Any]]
            }
            func query(_ expression: String) throws -> Double? {
                guard let value = try results(expression)?.first?["value"] as? [Any], let text = value.last as? String
                else { return nil }
                return Double(text)
            }
            try await harness.waitFor("Prometheus to scrape the daemon", timeout: .seconds(60)) {
                try query(#"up{job="openai-auditd"}"#) == 1
            }
            try await harness.waitFor("the delivered count in Prometheus") {
                try query(#"openai_auditd_events_sent_total{job="openai-auditd", sink="out"}"#) == 25
            }
            #expect(try query("count(openai_auditd_build_info)") == 1)
            // Every expression of the shipped dashboard is valid PromQL over what the daemon
            // exports, and has data once a few scrapes make rates (at least two samples).
            try await harness.waitFor("three scrapes") {
                (try query(#"count_over_time(up{job="openai-auditd"}[1m])"#) ?? 0) >= 3
            }
            let dashboard = try #require(
                try JSONSerialization.jsonObject(
                    with: Data(
                        contentsOf: URL(fileURLWithPath: DaemonHarness.root + "/packaging/grafana/openai-auditd.json")))
                    as? [String: Any])
            let panels = try #require(dashboard["panels"] as? [[String: Any]])
            let expressions = panels.flatMap {
                ($0["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String }
            }
            #expect(expressions.count >= 6)
            for expression in expressions {
                let concrete = expression.replacingOccurrences(of: "$job", with: "openai-auditd")
                    .replacingOccurrences(of: "$instance", with: ".*")
                let answer = try results(concrete)
                #expect(answer != nil, "Prometheus refused \(concrete)")
                #expect(answer?.isEmpty == false, "\(concrete) has data")
            }
            let rules = try DaemonHarness.get("http://127.0.0.1:\(prometheusPort)/api/v1/rules").body
            #expect(rules.components(separatedBy: #""type":"alerting""#).count - 1 == 5, "the five rules are loaded")
            #expect(!rules.contains(#""health":"err""#), "\(rules)")
            kill(daemon.processIdentifier, SIGTERM)
            #expect(try await DaemonHarness.wait(daemon, timeout: .seconds(20)) == 0)
        }
    }

    /// A peer that opens a request and sends one more header line now and then, never
    /// finishing it (slowloris), from `source` (any of 127.0.0.0/8).
    final class SlowPeer {
        let fd: Int32

        init(port: Int, source: String) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            func address(_ host: String, _ port: Int) -> sockaddr_in {
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_addr.s_addr = inet_addr(host)
                address.sin_port = UInt16(port).bigEndian
                return address
            }
            var local = address(source, 0)
            var remote = address("127.0.0.1", port)
            let length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let connected = withUnsafePointer(to: &local) { localPointer in
                withUnsafePointer(to: &remote) { remotePointer in
                    localPointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { from in
                        remotePointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { to in
                            bind(fd, from, length) == 0 && connect(fd, to, length) == 0
                        }
                    }
                }
            }
            guard connected else {
                Glibc.close(fd)
                throw HarnessError("a slow peer could not connect from \(source): errno \(errno)")
            }
            _ = send("GET /metrics HTTP/1.1\r\n")
        }

        deinit { Glibc.close(fd) }

        @discardableResult
        func send(_ text: String) -> Bool {
            text.utf8CString.withUnsafeBufferPointer {
                Glibc.send(fd, $0.baseAddress, $0.count - 1, Int32(MSG_NOSIGNAL)) > 0
            }
        }

        /// The server closed the connection (end of file or reset), without waiting.
        var closedByServer: Bool {
            var byte: UInt8 = 0
            let count = recv(fd, &byte, 1, Int32(MSG_DONTWAIT))
            return count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        }
    }

    /// Sixteen peers from two other addresses fill every slot, each sending a header line
    /// every second and never finishing its request, and reconnecting when closed (slowloris):
    /// a scrape is still answered every second, taking the place of the peer that waited
    /// longest, and no slow peer lives past the head's total deadline (5 s) however often it
    /// sends. (Before, they held all 16 slots and each byte reset a 10 s idle timer: /metrics
    /// was down for 40 s.)
    @Test func slowPeersCannotKeepAScrapeOut() async throws {
        try await DaemonHarness.with { harness async throws in
            let port = try RsyslogHarness.freePort()
            try harness.writeConfig(
                poll: "  interval: 1s\n  start_at: -1h", extra: "metrics:\n  listen: 127.0.0.1:\(port)")
            let daemon = try harness.launch(["run", "--config", harness.configPath])
            let base = "http://127.0.0.1:\(port)"
            try await harness.waitFor("the endpoint") { (try? DaemonHarness.get(base + "/healthz").status) == 200 }
            let sources = (0..<16).map { $0 < 8 ? "127.0.0.2" : "127.0.0.3" }
            var peers = try sources.map { (peer: try SlowPeer(port: port, source: $0), opened: ContinuousClock.now) }
            var answered = 0
            var reopened = 0
            var oldest = Duration.zero
            for second in 1...12 {
                try await Task.sleep(for: .seconds(1))
                for index in peers.indices {
                    if peers[index].peer.closedByServer || !peers[index].peer.send("X-Slow-\(second): 1\r\n") {
                        peers[index] = (try SlowPeer(port: port, source: sources[index]), ContinuousClock.now)
                        reopened += 1
                    }
                    oldest = max(oldest, ContinuousClock.now - peers[index].opened)
                }
                let scrape = try DaemonHarness.get(base + "/metrics")
                if scrape.status == 200 && scrape.body.contains("openai_auditd_build_info") { answered += 1 }
            }
            #expect(answered == 12, "a scrape answered every second: \(answered) of 12")
            #expect(reopened >= 16, "every slow peer was closed at least once: \(reopened) closings")
            #expect(oldest < .seconds(8), "no slow peer lived past the deadline: the oldest \(oldest)")
            kill(daemon.processIdentifier, SIGTERM)
            #expect(try await DaemonHarness.wait(daemon, timeout: .seconds(20)) == 0, "\(harness.stderr)")
        }
    }

    @Test func aPortInUseIsAConfigurationError() async throws {
        try await DaemonHarness.with { harness async throws in
            // The simulator's own port is taken.
            let port = try #require(URL(string: harness.simulator.baseURL)?.port)
            try harness.writeConfig(poll: "  start_at: -1h", extra: "metrics:\n  listen: 127.0.0.1:\(port)")
            #expect(try await harness.run(["run", "--config", harness.configPath]) == 78)
            #expect(harness.stderr.contains("metrics.listen: cannot listen on 127.0.0.1:\(port)"), "\(harness.stderr)")
        }
    }
}
