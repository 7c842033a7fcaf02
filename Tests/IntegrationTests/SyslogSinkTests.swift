import AuditSimulator
import Foundation
import Testing

/// The binary with a syslog sink, against the simulator and a real rsyslogd.
@Suite(.serialized) struct SyslogSinkTests {
    static let now = Int64(Date().timeIntervalSince1970)

    /// Runs `body` with a harness for the daemon and a started rsyslogd; both cleaned up after.
    func withRsyslog(_ body: (DaemonHarness, RsyslogHarness) async throws -> Void) async throws {
        let rsyslog = try await RsyslogHarness.started()
        do {
            try await DaemonHarness.with { harness async throws in try await body(harness, rsyslog) }
        } catch {
            await rsyslog.close()
            throw error
        }
        await rsyslog.close()
    }

    func url(_ transport: String, _ rsyslog: RsyslogHarness) -> String {
        switch transport {
        case "unix": "unix://\(rsyslog.unixSocket)"
        case "udp": "udp://127.0.0.1:\(rsyslog.udpPort)"
        case "tcp": "tcp://127.0.0.1:\(rsyslog.tcpPort)"
        case "tcp-newline": "tcp://localhost:\(rsyslog.tcpPort)"
        case "tcp-ipv6": "tcp://[::1]:\(rsyslog.ipv6Port)"
        case "tls": "tls://localhost:\(rsyslog.tlsPort)"
        case "relp": "relp://127.0.0.1:\(rsyslog.relpPort)"
        case "relp-tls": "relp+tls://localhost:\(rsyslog.relpTLSPort)"
        default: "tls://localhost:\(rsyslog.mutualTLSPort)"
        }
    }

    func sinkConfig(url: String, hostname: String, extra: String = "", rsyslog: RsyslogHarness) -> String {
        """
        sinks:
          - type: syslog
            url: \(url)
            hostname: \(hostname)
            tls: {ca_file: \(rsyslog.directory)/ca.pem, cert_file: \(rsyslog.directory)/client.pem, key_file: \(rsyslog.directory)/client.key}
        \(extra)
        """
    }

    func waitFor(_ what: String, _ condition: () -> Bool) async throws {
        for _ in 0..<300 where !condition() { try await Task.sleep(for: .milliseconds(100)) }
        guard condition() else { throw HarnessError("timed out waiting for \(what)") }
    }

    @Test(arguments: ["unix", "udp", "tcp", "tcp-newline", "tcp-ipv6", "tls", "mtls", "relp", "relp-tls"])
    func everyTransportDeliversEveryEventParsedAndWhole(transport: String) async throws {
        try await withRsyslog { harness, rsyslog in
            let hostname = "t-\(transport)-\(UUID().uuidString.prefix(6))"
            harness.simulator.addEvents(count: 80, from: Self.now - 3000, to: Self.now - 100, tricky: true)
            let streams = transport.hasPrefix("tcp") || transport.hasSuffix("tls") || transport.hasPrefix("relp")
            if streams {
                harness.simulator.addEvents(count: 2, from: Self.now - 50, types: ["project.created"], large: true)
            }
            let framing = transport == "tcp-newline" ? "    framing: newline" : ""
            try harness.writeConfig(
                poll: "  start_at: -2h",
                extra: sinkConfig(url: url(transport, rsyslog), hostname: hostname, extra: framing, rsyslog: rsyslog))
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 0, "\(harness.stderr)")
            let expected = streams ? 82 : 80
            try await waitFor("\(expected) messages") { rsyslog.messages(hostname: hostname).count >= expected }
            let messages = rsyslog.messages(hostname: hostname)
            #expect(messages.count == expected)
            let served = try harness.servedEvents()
            var large = 0
            for message in messages {
                let msg = try #require(message["msg"] as? String)
                let event = try #require(
                    try JSONSerialization.jsonObject(with: Data(msg.utf8)) as? NSDictionary, "\(msg.prefix(200))")
                let id = try #require(event["id"] as? String)
                let type = try #require(event["type"] as? String)
                #expect(message["app-name"] as? String == "openai-auditd")
                #expect(message["msgid"] as? String == String(type.prefix(32)))
                #expect(
                    (message["structured-data"] as? String)?.hasPrefix("[openai@32473 id=\"\(id)\" type=\"\(type)\"")
                        == true)
                let at = try #require((event["effective_at"] as? NSNumber)?.int64Value)
                let stamp = message["timestamp"] as? String ?? ""
                #expect(stamp.hasPrefix(String(TimeSpecForTests.format(at).dropLast())), "\(stamp)")
                if let original = served[id] {
                    #expect(try JSONSerialization.jsonObject(with: Data(original.json)) as? NSDictionary == event)
                }
                if msg.utf8.count > 100_000 { large += 1 }
            }
            #expect(large == (streams ? 2 : 0), "100 KB events survive TCP, TLS and RELP")
            #expect(Set(messages.compactMap { $0["msg"] as? String }).count == expected, "each once")
        }
    }

    /// A relay between the daemon and rsyslog resets both sides three times while 3,000
    /// events pass, throwing away what it had read but not forwarded (a collector restart, a
    /// load balancer's cut). Over RELP every event arrives, repeats at most a window per
    /// reset; over plain TCP what was in flight is lost, which is printed, not failed on:
    /// that is TCP's weakness, and why RELP exists.
    @Test(arguments: ["relp", "tcp"])
    func aConnectionThatBreaksMidStreamLosesNothingOverRELP(transport: String) async throws {
        try await withRsyslog { harness, rsyslog in
            let hostname = "t-cut-\(transport)-\(UUID().uuidString.prefix(6))"
            let ids = harness.simulator.addEvents(count: 3000, from: Self.now - 3000, to: Self.now - 10)
            // Both sides reset after every 300 KB the daemon sends, three times.
            let relay = try ToolProcess(
                "reset-relay.py", ["\(transport == "relp" ? rsyslog.relpPort : rsyslog.tcpPort)", "300000", "3"])
            defer { relay.stop() }
            let metrics = try RsyslogHarness.freePort()
            try harness.writeConfig(
                poll: "  interval: 1s\n  start_at: -1h",
                extra: sinkConfig(
                    url: "\(transport)://127.0.0.1:\(relay.port)", hostname: hostname,
                    extra: "    timeout: 5s\nmetrics:\n  listen: 127.0.0.1:\(metrics)", rsyslog: rsyslog))
            let daemon = try harness.launch(["run", "--config", harness.configPath])
            try await harness.waitFor("the daemon to deliver all 3,000", timeout: .seconds(120)) {
                (harness.delivered() ?? 0) >= 3000 && relay.lines.withLock { $0.count { $0.hasPrefix("reset ") } } >= 3
            }
            // What was sent again after the breaks, as Prometheus sees it.
            let exposition = try DaemonHarness.get("http://127.0.0.1:\(metrics)/metrics").body
            let resent =
                exposition.split(separator: "\n").first { $0.hasPrefix("openai_auditd_events_resent_total{") }
                .flatMap { Double($0.split(separator: " ").last ?? "") } ?? -1
            kill(daemon.processIdentifier, SIGTERM)
            #expect(try await DaemonHarness.wait(daemon, timeout: .seconds(30)) == 0)
            try await Task.sleep(for: .seconds(1))
            let received = rsyslog.messages(hostname: hostname).compactMap { message -> String? in
                guard let msg = message["msg"] as? String,
                    let event = try? JSONSerialization.jsonObject(with: Data(msg.utf8)) as? [String: Any]
                else { return nil }
                return event["id"] as? String
            }
            let unique = Set(received)
            print(
                "\(transport) through a relay that reset three times: \(unique.count) of 3000 arrived, "
                    + "\(received.count - unique.count) twice (\(Int(resent)) counted as resent), "
                    + "\(3000 - Set(ids).intersection(unique).count) lost")
            if transport == "relp" {
                #expect(resent > 0 && resent <= 3 * 128, "resends counted: \(resent)")
                #expect(Set(ids).isSubset(of: unique), "every event arrives over RELP")
                #expect(received.count - unique.count <= 3 * 128, "repeats at most a window per reset")
                #expect(harness.stderr.contains("sink failed"), "the breaks were seen")
            }
        }
    }

    /// A collector (or a load balancer before it) that closes idle connections cleanly
    /// between polls: the next batch connects again at once. It used to fail once, with "the
    /// collector closed the connection", and wait out the backoff, at every such close.
    @Test(arguments: ["tcp", "relp"])
    func anIdleConnectionClosedByTheCollectorIsOpenedAgainAtOnce(transport: String) async throws {
        try await withRsyslog { harness, rsyslog in
            let hostname = "t-idle-\(transport)-\(UUID().uuidString.prefix(6))"
            let relay = try ToolProcess(
                "reset-relay.py",
                ["\(transport == "relp" ? rsyslog.relpPort : rsyslog.tcpPort)", "100000000", "0", "300"])
            defer { relay.stop() }
            harness.simulator.addEvents(count: 10, from: Self.now - 300, to: Self.now - 200)
            try harness.writeConfig(
                poll: "  interval: 1s\n  start_at: -1h",
                extra: sinkConfig(
                    url: "\(transport)://127.0.0.1:\(relay.port)", hostname: hostname, rsyslog: rsyslog))
            let daemon = try harness.launch(["run", "--config", harness.configPath])
            for round in 1...3 {
                try await harness.waitFor("round \(round) at the collector", timeout: .seconds(60)) {
                    rsyslog.messages(hostname: hostname).count >= 10 * round
                }
                // Idle past the relay's 300 ms: it closes the connection, cleanly.
                try await harness.waitFor("the idle close \(round)") {
                    relay.lines.withLock { $0.count { $0 == "idle close" } } >= round
                }
                harness.simulator.addEvents(count: 10, from: Self.now - 150 + Int64(round) * 20)
            }
            kill(daemon.processIdentifier, SIGTERM)
            #expect(try await DaemonHarness.wait(daemon, timeout: .seconds(30)) == 0)
            #expect(rsyslog.messages(hostname: hostname).count >= 30)
            #expect(!harness.stderr.contains("sink failed"), "no batch failed on an idle close: \(harness.stderr)")
        }
    }

    /// kill -9 of the daemon mid-stream, then rsyslog restarted mid-stream: over RELP nothing
    /// is lost, and only what was in flight unanswered can arrive twice (at most a window
    /// each time): what was answered is in the receipts, held by the next start.
    @Test func relpLosesNothingThroughKillNineAndACollectorRestart() async throws {
        try await withRsyslog { harness, rsyslog in
            let hostname = "t-relp-kill-\(UUID().uuidString.prefix(6))"
            let ids = harness.simulator.addEvents(count: 6000, from: Self.now - 5 * 86_400, to: Self.now - 60)
            // Slow pages stretch the catch-up so that the kill and the restart land inside it.
            harness.simulator.faults.enqueue(.slow(milliseconds: 100), count: 100_000)
            let metrics = try RsyslogHarness.freePort()
            try harness.writeConfig(
                poll: "  interval: 1s\n  start_at: -6d\n  max_window_events: 1000",
                extra: sinkConfig(
                    url: url("relp", rsyslog), hostname: hostname,
                    extra: "    window: 64\n    timeout: 5s\nmetrics:\n  listen: 127.0.0.1:\(metrics)",
                    rsyslog: rsyslog))
            func arrived() -> [String] {
                rsyslog.messages(hostname: hostname).compactMap {
                    ($0["structured-data"] as? String)?.split(separator: "\"").dropFirst().first.map(String.init)
                }
            }
            let first = try harness.launch(["run", "--config", harness.configPath])
            try await harness.waitFor("1,500 at the collector", timeout: .seconds(120)) { arrived().count >= 1500 }
            kill(first.processIdentifier, SIGKILL)
            _ = try await DaemonHarness.wait(first, timeout: .seconds(10))
            #expect(arrived().count < 6000, "the kill landed mid-stream")
            let second = try harness.launch(["run", "--config", harness.configPath])
            try await harness.waitFor("3,500 at the collector", timeout: .seconds(120)) { arrived().count >= 3500 }
            try await rsyslog.stop()
            try await Task.sleep(for: .seconds(1))
            try await rsyslog.start()
            try await harness.waitFor("every event at the collector", timeout: .seconds(180)) {
                Set(arrived()).count >= 6000
            }
            // The second process counts what it sent again: what the first left in flight (read
            // from the receipt log) and what the restart cut.
            let exposition = try DaemonHarness.get("http://127.0.0.1:\(metrics)/metrics").body
            let resent =
                exposition.split(separator: "\n").first { $0.hasPrefix("openai_auditd_events_resent_total{") }
                .flatMap { Int(Double($0.split(separator: " ").last ?? "") ?? -1) } ?? -1
            kill(second.processIdentifier, SIGTERM)
            #expect(try await DaemonHarness.wait(second, timeout: .seconds(30)) == 0)
            let received = arrived()
            #expect(Set(received) == Set(ids), "nothing lost")
            let twice = received.count - Set(received).count
            print(
                "relp through kill -9 and a collector restart: 6000 of 6000, \(twice) twice, \(resent) counted as resent"
            )
            #expect(twice <= 2 * 64, "at most a window each time: \(twice)")
            #expect(resent >= twice && resent <= 2 * 64, "every repeat counted, at most a window each time: \(resent)")
        }
    }

    /// `check` opens a RELP session: it passes against imrelp, and names what fails: a port
    /// that is not RELP (imtcp takes the `open` as a message and answers nothing), a refused
    /// connection.
    @Test func checkOpensARELPSessionAndNamesWhatFailed() async throws {
        try await withRsyslog { harness, rsyslog in
            let closed = try RsyslogHarness.freePort()
            for (url, status, words) in [
                ("relp://127.0.0.1:\(rsyslog.relpPort)", Int32(0), nil),
                ("relp://127.0.0.1:\(rsyslog.tcpPort)", 74, "is this a RELP port (imrelp)?"),
                ("relp://127.0.0.1:\(closed)", 74, "cannot connect to 127.0.0.1:\(closed)"),
            ] as [(String, Int32, String?)] {
                try harness.writeConfig(
                    extra: sinkConfig(url: url, hostname: "check", extra: "    timeout: 3s", rsyslog: rsyslog))
                let earlier = harness.stderr.count
                #expect(try await harness.run(["check", "--config", harness.configPath]) == status, "\(url)")
                let said = String(harness.stderr.dropFirst(earlier))
                if let words { #expect(said.contains(words), "\(said)") }
            }
            // RELP over TLS against trust roots that are not the collector's CA.
            try harness.writeConfig(
                extra: """
                    sinks:
                      - type: syslog
                        url: relp+tls://localhost:\(rsyslog.relpTLSPort)
                        timeout: 3s
                        tls: {ca_file: \(rsyslog.directory)/other-ca.pem}
                    """)
            let earlier = harness.stderr.count
            #expect(try await harness.run(["check", "--config", harness.configPath]) == 74)
            let said = String(harness.stderr.dropFirst(earlier))
            #expect(said.contains("TLS: its certificate does not verify against the trust roots"), "\(said)")
        }
    }

    @Test(arguments: ["cef", "leef"], ["tcp", "relp"])
    func cefAndLEEFPayloadsCarryTheirFields(payload: String, transport: String) async throws {
        try await withRsyslog { harness, rsyslog in
            let hostname = "t-\(payload)-\(transport)-\(UUID().uuidString.prefix(6))"
            let ids = harness.simulator.addEvents(
                count: 20, from: Self.now - 300, to: Self.now - 10, types: ["login.failed"], tricky: true)
            try harness.writeConfig(
                poll: "  start_at: -1h",
                extra: sinkConfig(
                    url: url(transport, rsyslog), hostname: hostname, extra: "    payload: \(payload)",
                    rsyslog: rsyslog))
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 0, "\(harness.stderr)")
            try await waitFor("20 messages") { rsyslog.messages(hostname: hostname).count >= 20 }
            let msgs = rsyslog.messages(hostname: hostname).compactMap { $0["msg"] as? String }
            #expect(msgs.count == 20)
            let served = try harness.servedEvents()
            for msg in msgs {
                let fields: [String: String]
                if payload == "cef" {
                    #expect(msg.hasPrefix("CEF:0|OpenAI|Audit Log|"))
                    #expect(msg.contains("|login.failed|login.failed|7|rt="))
                    fields = Self.extensions(
                        msg, separator: " ", escapes: ["\\": "\\", "=": "=", "n": "\n", "r": "\r"])
                } else {
                    #expect(msg.hasPrefix("LEEF:2.0|OpenAI|Audit Log|"))
                    #expect(msg.contains("|login.failed|^|devTime="))
                    fields = Self.extensions(
                        msg, separator: "^", escapes: ["\\": "\\", "^": "^", "n": "\n", "r": "\r", "t": "\t"])
                }
                #expect(!msg.contains("\n"))
                // Parsed back, the fields give the event: its id, and the whole JSON.
                let id = try #require(fields["externalId"])
                #expect(ids.contains(id))
                let json = try #require(fields[payload == "cef" ? "cs2" : "event"])
                let event = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? NSDictionary
                let original =
                    try JSONSerialization.jsonObject(with: Data(try #require(served[id]).json)) as? NSDictionary
                #expect(event == original)
            }
        }
    }

    @Test(arguments: ["unix", "relp"])
    func rfc3164LinesArriveParsed(transport: String) async throws {
        try await withRsyslog { harness, rsyslog in
            let hostname = "t-3164-\(transport)-\(UUID().uuidString.prefix(6))"
            let ids = harness.simulator.addEvents(count: 10, from: Self.now - 300, to: Self.now - 10, tricky: true)
            try harness.writeConfig(
                poll: "  start_at: -1h",
                extra: sinkConfig(
                    url: url(transport, rsyslog), hostname: hostname, extra: "    protocol: rfc3164",
                    rsyslog: rsyslog))
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 0, "\(harness.stderr)")
            try await waitFor("10 messages") { rsyslog.messages(hostname: hostname).count >= 10 }
            for message in rsyslog.messages(hostname: hostname) {
                #expect(message["app-name"] as? String == "openai-auditd")
                let msg = try #require(message["msg"] as? String)
                let event = try #require(try JSONSerialization.jsonObject(with: Data(msg.utf8)) as? [String: Any])
                #expect(ids.contains(event["id"] as? String ?? ""))
            }
        }
    }

    @Test func anEventTooLargeForADatagramIsSentAsARecordNamingIt() async throws {
        try await withRsyslog { harness, rsyslog in
            let hostname = "t-big-\(UUID().uuidString.prefix(6))"
            let id = try #require(
                harness.simulator.addEvents(count: 1, from: Self.now - 30, types: ["project.created"], large: true)
                    .first)
            try harness.writeConfig(
                poll: "  start_at: -1h",
                extra: sinkConfig(url: url("udp", rsyslog), hostname: hostname, rsyslog: rsyslog))
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 0)
            try await waitFor("the record") { !rsyslog.messages(hostname: hostname).isEmpty }
            let msg = try #require(rsyslog.messages(hostname: hostname).first?["msg"] as? String)
            let record = try #require(try JSONSerialization.jsonObject(with: Data(msg.utf8)) as? [String: Any])
            #expect(record["id"] as? String == id)
            #expect(
                (record["openai_auditd_error"] as? String)?.contains("too large for this datagram transport") == true)
            #expect(harness.stderr.contains("event too large for a datagram syslog transport"))
        }
    }

    @Test(arguments: ["wrong-ca", "wrong-name", "no-client-certificate"])
    func tlsFailuresAreClearAndDeliverNothing(failure: String) async throws {
        try await withRsyslog { harness, rsyslog in
            let hostname = "t-\(failure)-\(UUID().uuidString.prefix(6))"
            harness.simulator.addEvents(count: 5, from: Self.now - 100)
            let tls: String
            switch failure {
            case "wrong-ca": tls = "{ca_file: \(rsyslog.directory)/other-ca.pem}"
            case "wrong-name": tls = "{ca_file: \(rsyslog.directory)/ca.pem, server_name: siem.example.com}"
            default: tls = "{ca_file: \(rsyslog.directory)/ca.pem}"
            }
            let port = failure == "no-client-certificate" ? rsyslog.mutualTLSPort : rsyslog.tlsPort
            try harness.writeConfig(
                poll: "  start_at: -1h",
                extra: """
                    sinks:
                      - type: syslog
                        url: tls://localhost:\(port)
                        hostname: \(hostname)
                        tls: \(tls)
                    """)
            let status = try await harness.run(["once", "--config", harness.configPath])
            #expect(status == 74, "\(harness.stderr)")
            #expect(harness.stderr.contains("sink syslog tls://localhost:\(port)"))
            // The reason is the verification's own, not any failure: a collector that is simply
            // not listening (connection refused) must not pass for one.
            let reason =
                switch failure {
                case "wrong-ca": "TLS: its certificate does not verify against the trust roots"
                case "wrong-name": "TLS: its certificate does not name siem.example.com"
                // rsyslog (GnuTLS) drops a client without a certificate after the handshake,
                // without an alert: the TLS layer is all that can be named.
                default: "(the connection ended: TLS: "
                }
            #expect(harness.stderr.contains(reason), "\(harness.stderr)")
            // Nothing of it arrived and nothing was lost: the same sink, trusting the collector
            // (under another hostname), then delivers the five, and only its lines are there.
            let after = hostname + "-after"
            try harness.writeConfig(
                poll: "  start_at: -1h",
                extra: sinkConfig(url: "tls://localhost:\(port)", hostname: after, rsyslog: rsyslog))
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 0, "\(harness.stderr)")
            try await waitFor("the five events") { rsyslog.messages(hostname: after).count >= 5 }
            #expect(rsyslog.messages(hostname: after).count == 5)
            #expect(rsyslog.messages(hostname: hostname).isEmpty)
        }
    }

    @Test(arguments: ["tcp", "tls"])
    func rsyslogStoppedForAWhileLosesNothing(transport: String) async throws {
        try await withRsyslog { harness, rsyslog in
            let hostname = "t-stop-\(transport)-\(UUID().uuidString.prefix(6))"
            harness.simulator.addEvents(count: 30, from: Self.now - 600, to: Self.now - 300)
            try harness.writeConfig(
                poll: "  interval: 1s\n  start_at: -1h",
                extra: sinkConfig(url: url(transport, rsyslog), hostname: hostname, rsyslog: rsyslog))
            let daemon = try harness.launch(["run", "--config", harness.configPath])
            try await harness.waitFor("the first 30") { harness.delivered() == 30 }
            try await rsyslog.stop()
            harness.simulator.addEvents(count: 20, from: Self.now - 200, to: Self.now - 100)
            try await harness.waitFor("the failure") {
                harness.stderr.contains("sink failed, its position did not move")
            }
            #expect(harness.delivered() ?? 0 < 50, "the state does not move past undelivered events")
            try await rsyslog.start()
            try await harness.waitFor("the other 20", timeout: .seconds(90)) { harness.delivered() == 50 }
            kill(daemon.processIdentifier, SIGTERM)
            #expect(try await DaemonHarness.wait(daemon, timeout: .seconds(20)) == 0)
            try await waitFor("50 ids") {
                Set(
                    rsyslog.messages(hostname: hostname).compactMap {
                        ($0["structured-data"] as? String)?.split(separator: "\"").dropFirst().first
                    }
                ).count >= 50
            }
            let ids = Set(
                rsyslog.messages(hostname: hostname).compactMap {
                    ($0["structured-data"] as? String)?.split(separator: "\"").dropFirst().first
                })
            #expect(ids.count == 50, "none missing")
        }
    }
}

extension SyslogSinkTests {
    /// A CEF or LEEF line's key=value part, unescaped (what a SIEM's parser does).
    static func extensions(_ line: String, separator: Character, escapes: [Character: String]) -> [String: String] {
        // The attributes start after the last unescaped header pipe (7 for CEF, 6 for LEEF 2.0).
        var pipes = 0
        var index = line.startIndex
        var escaped = false
        let headerFields = separator == " " ? 7 : 6
        while index < line.endIndex, pipes < headerFields {
            let character = line[index]
            if escaped {
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "|" {
                pipes += 1
            }
            index = line.index(after: index)
        }
        let attributes = String(line[index...])
        return separator == " " ? cefFields(attributes, escapes: escapes) : leefFields(attributes, escapes: escapes)
    }

    /// LEEF: `key=value` pairs split at unescaped `^`.
    static func leefFields(_ text: String, escapes: [Character: String]) -> [String: String] {
        var fields: [String: String] = [:]
        var pair = ""
        var escaped = false
        func finish() {
            if let equals = pair.firstIndex(of: "=") {
                fields[String(pair[..<equals])] = unescape(String(pair[pair.index(after: equals)...]), escapes: escapes)
            }
            pair = ""
        }
        for character in text {
            if escaped {
                pair += "\\\(character)"
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "^" {
                finish()
            } else {
                pair.append(character)
            }
        }
        finish()
        return fields
    }

    static func unescape(_ raw: String, escapes: [Character: String]) -> String {
        var out = ""
        var escaped = false
        for character in raw {
            if escaped {
                out += escapes[character] ?? String(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else {
                out.append(character)
            }
        }
        return out
    }

    /// CEF: values may hold spaces, so a value ends where ` <known key>=` begins.
    static func cefFields(_ text: String, escapes: [Character: String]) -> [String: String] {
        let keys = ["rt", "externalId", "suser", "suid", "src", "cs1Label", "cs1", "cs2Label", "cs2"]
        var fields: [String: String] = [:]
        var rest = Substring(text)
        var current: String?
        var value = ""
        while !rest.isEmpty {
            if let key = keys.first(where: { rest.hasPrefix("\($0)=") && (current == nil || value.hasSuffix(" ")) }) {
                if let current { fields[current] = unescape(String(value.dropLast()), escapes: escapes) }
                current = key
                value = ""
                rest = rest.dropFirst(key.count + 1)
                continue
            }
            value.append(rest.removeFirst())
        }
        if let current { fields[current] = unescape(value, escapes: escapes) }
        return fields
    }
}

/// RFC 3339 without Foundation's formatters, for comparing rsyslog's timestamps.
enum TimeSpecForTests {
    static func format(_ seconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }
}
