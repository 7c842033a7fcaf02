import AuditSimulator
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Detections end to end: the built binary with the shipped rules and a rule of the
/// operator's, events of every built-in rule and near misses, into the real journal and a
/// real rsyslog collector; the metrics; `rules test`, `rules list`; a malformed rule file.
@Suite(.serialized) struct DetectionTests {
    static let now = Int64(Date().timeIntervalSince1970)
    static let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("packaging/rules").path

    /// An event of `type` with `payload` under its type's key, from `email` at `ip`.
    static func event(
        _ id: String, _ type: String, at: Int64, payload: [(String, JSONValue)] = [],
        email: String = "alice@example.com", ip: String = "198.51.100.7"
    ) -> JSONValue {
        .object([
            ("id", .string(id)), ("type", .string(type)), ("effective_at", .integer(at)),
            (
                "actor",
                .object([
                    ("type", .string("session")),
                    (
                        "session",
                        .object([
                            ("user", .object([("id", .string("user-1")), ("email", .string(email))])),
                            ("ip_address", .string(ip)),
                        ])
                    ),
                ])
            ),
            (type, .object([("id", .string("obj-\(id)"))] + payload)),
        ])
    }

    /// (id, type, payload, the rules it must carry, the journal PRIORITY it must have)
    static let cases: [(String, String, [(String, JSONValue)], [String], Int)] = [
        (
            "owner", "user.updated", [("changes_requested", .object([("role", .string("owner"))]))],
            ["openai-owner-role-granted"], 3
        ),
        (
            "invite-owner", "invite.sent", [("data", .object([("role", .string("owner"))]))],
            ["openai-owner-role-granted"], 3
        ),
        ("invite-reader", "invite.sent", [("data", .object([("role", .string("reader"))]))], [], 5),
        ("admin-key", "tenant.admin_api_key.created", [], ["openai-admin-api-key-created"], 3),
        (
            "broad-key", "api_key.created", [("data", .object([("scopes", .array([.string("api.files.write")]))]))],
            ["openai-api-key-broad-scope"], 4
        ),
        ("allowlist-off", "ip_allowlist.config.deactivated", [], ["openai-ip-allowlist-removed"], 2),
        ("allowlist-changed", "ip_allowlist.updated", [], ["openai-ip-allowlist-changed"], 3),
        ("allowlist-added", "ip_allowlist.created", [], ["openai-ip-allowlist-added"], 4),
        ("scim-off", "scim.disabled", [], ["openai-scim-disabled"], 3),
        ("scim-on", "scim.enabled", [], ["openai-scim-changed"], 4),
        ("sso-removed", "tenant.sso_connection.deleted", [], ["openai-sso-removed"], 3),
        ("sso-changed", "tenant.sso_connection.updated", [], ["openai-sso-changed"], 4),
        ("session-policy", "tenant.session_policy.updated", [], ["openai-session-policy-changed"], 4),
        ("role-assigned", "role.assignment.created", [], ["openai-role-assignment-changed"], 4),
        ("cert-removed", "certificates.deactivated", [], ["openai-mtls-certificate-removed"], 4),
        ("project-gone", "project.deleted", [], ["openai-project-deleted"], 5),
        ("quiet", "project.created", [], [], 5),
    ]

    /// The operator's own rule: a login from outside the office network, in Sigma with `cidr` and `not`.
    static let officeRule = """
        title: Login from outside the office
        id: acme-login-outside-office
        logsource:
          product: openai
          service: audit
        detection:
          login:
            type: login.succeeded
          office:
            actor.session.ip_address|cidr: 192.0.2.0/24
          condition: login and not office
        level: high
        """

    @Test func ruleMatchesRaiseTheSeverityInTheJournalAndAtTheCollectorAndAreCounted() async throws {
        try await JournaldHarness.shared.start()
        let rsyslog = try await RsyslogHarness.started()
        do {
            try await DaemonHarness.with { harness in try await Self.deliver(harness, rsyslog) }
        } catch {
            await rsyslog.close()
            throw error
        }
        await rsyslog.close()
    }

    static func deliver(_ harness: DaemonHarness, _ rsyslog: RsyslogHarness) async throws {
        let start = now - 3600
        var values = cases.enumerated().map { index, item in
            event(item.0, item.1, at: start + Int64(index) * 10, payload: item.2)
        }
        // Four failed logins from four addresses: no stuffing; a fifth address makes it, and
        // a sixth event of the same burst is marked too.
        for index in 0..<6 {
            values.append(
                event(
                    "failed-\(index)", "login.failed", at: start + 600 + Int64(index) * 60,
                    email: "victim@example.com", ip: "203.0.113.\(index < 5 ? index : 1)"))
        }
        values.append(event("office", "login.succeeded", at: start + 1200, ip: "192.0.2.9"))
        values.append(event("outside", "login.succeeded", at: start + 1210, ip: "203.0.113.50"))
        _ = try harness.simulator.addRaw(values)
        let rules = harness.directory + "/acme.yml"
        try officeRule.write(toFile: rules, atomically: true, encoding: .utf8)
        let identifier = "openai-audit-d\(UUID().uuidString.prefix(6))"
        let hostname = "detections-\(UUID().uuidString.prefix(6))"
        let port = try RsyslogHarness.freePort()
        try harness.writeConfig(
            poll: "  interval: 1s\n  start_at: \(start - 60)",
            extra: """
                sinks:
                  - type: journald
                    identifier: \(identifier)
                  - type: syslog
                    url: tcp://127.0.0.1:\(rsyslog.tcpPort)
                    hostname: \(hostname)
                  - type: syslog
                    name: alerts
                    url: tcp://127.0.0.1:\(rsyslog.tcpPort)
                    hostname: \(hostname)-alerts
                    min_level: critical
                detections:
                  builtin_rules: \(shipped)
                  rules: [\(rules)]
                metrics:
                  listen: 127.0.0.1:\(port)
                """)
        let daemon = try harness.launch(["run", "--config", harness.configPath])
        let total = values.count
        try await harness.waitFor("every event in the journal", timeout: .seconds(60)) {
            try JournaldHarness.read(["SYSLOG_IDENTIFIER=\(identifier)"]).count >= total
        }
        try await harness.waitFor("every event at the collector", timeout: .seconds(30)) {
            rsyslog.messages(hostname: hostname).count >= total
        }
        let (status, metrics) = try DaemonHarness.get("http://127.0.0.1:\(port)/metrics")
        kill(daemon.processIdentifier, SIGTERM)
        #expect(try await DaemonHarness.wait(daemon, timeout: .seconds(30)) == 0)

        let entries = try JournaldHarness.read(["SYSLOG_IDENTIFIER=\(identifier)"])
        var journal: [String: (priority: String?, rules: [String])] = [:]
        for entry in entries {
            guard let id = JournaldHarness.text(entry["OPENAI_AUDIT_ID"]) else { continue }
            // One value prints as a string, several as a list.
            let rules: [String] =
                (entry["OPENAI_RULE"] as? [Any])?.compactMap(JournaldHarness.text)
                ?? JournaldHarness.text(entry["OPENAI_RULE"]).map { [$0] } ?? []
            journal[id] = (JournaldHarness.text(entry["PRIORITY"]), rules)
        }
        let collected = Dictionary(
            rsyslog.messages(hostname: hostname).compactMap { message -> (String, [String: Any])? in
                guard let sd = message["structured-data"] as? String,
                    let range = sd.range(of: #"id="[^"]*""#, options: .regularExpression)
                else { return nil }
                return (String(sd[range].dropFirst(4).dropLast()), message)
            }, uniquingKeysWith: { first, _ in first })
        for (id, type, _, rules, priority) in cases {
            #expect(journal[id]?.priority == String(priority), "\(id) \(type): \(String(describing: journal[id]))")
            #expect(journal[id]?.rules == rules, "\(id) \(type)")
            let message = collected[id]
            #expect(message?["pri"] as? String == String(16 * 8 + priority), "\(id): \(String(describing: message))")
            let sd = message?["structured-data"] as? String ?? ""
            for rule in rules { #expect(sd.contains(#"rule="\#(rule)""#), "\(id): \(sd)") }
            if rules.isEmpty { #expect(!sd.contains("rule="), "\(id): \(sd)") }
        }
        for index in 0..<4 { #expect(journal["failed-\(index)"]?.rules == [], "four addresses are no stuffing") }
        #expect(journal["failed-4"]?.rules == ["openai-credential-stuffing"])
        #expect(journal["failed-4"]?.priority == "4")
        #expect(journal["failed-5"]?.rules == ["openai-credential-stuffing"], "the rest of the burst is marked too")
        #expect(journal["office"]?.rules == [])
        #expect(journal["outside"]?.rules == ["acme-login-outside-office"] && journal["outside"]?.priority == "3")
        // The alerts-only destination got only the critical event.
        let alerts = rsyslog.messages(hostname: "\(hostname)-alerts")
        #expect(alerts.count == 1 && (alerts.first?["structured-data"] as? String)?.contains("allowlist-off") == true)
        #expect(status == 200)
        #expect(
            metrics.contains(#"openai_auditd_detections_total{rule="openai-ip-allowlist-removed",level="critical"} 1"#)
                || metrics.contains(
                    #"openai_auditd_detections_total{level="critical",rule="openai-ip-allowlist-removed"} 1"#),
            "\(metrics.split(separator: "\n").filter { $0.contains("detections") })")
        #expect(metrics.contains("openai-credential-stuffing"))
    }

    @Test func aReloadReadsTheRulesAgainAndABrokenRuleFileKeepsTheRulesInForce() async throws {
        try await DaemonHarness.with { harness in
            let login = { (id: String, at: Int64) in Self.event(id, "login.succeeded", at: at, ip: "203.0.113.50") }
            _ = try harness.simulator.addRaw([login("before", Self.now - 100)])
            let rules = harness.directory + "/acme.yml"
            let config = { (extra: String) in
                try harness.writeConfig(
                    poll: "  interval: 1s\n  start_at: -1h",
                    extra:
                        "sinks:\n  - type: stdout\n    annotate: true\ndetections:\n  builtin_rules: \(Self.shipped)\n"
                        + extra)
            }
            try config("")
            let daemon = try harness.launch(["run", "--config", harness.configPath])
            try await harness.waitFor("the first event") { harness.lineCount() == 1 }
            // The operator adds a rule of their own and reloads.
            try Self.officeRule.write(toFile: rules, atomically: true, encoding: .utf8)
            try config("  rules: [\(rules)]\n")
            kill(daemon.processIdentifier, SIGHUP)
            try await harness.waitFor("the reload") { harness.stderr.contains("configuration reloaded") }
            _ = try harness.simulator.addRaw([login("after", Self.now - 50)])
            try await harness.waitFor("the event after the reload") { harness.lineCount() == 2 }
            // A rule file broken by an edit: the reload is refused, the rules in force stay.
            try (Self.officeRule + "\n  broken: [\n").write(toFile: rules, atomically: true, encoding: .utf8)
            kill(daemon.processIdentifier, SIGHUP)
            try await harness.waitFor("the refusal") {
                harness.stderr.contains("configuration reload failed, keeping the running configuration")
            }
            _ = try harness.simulator.addRaw([login("still", Self.now - 20)])
            try await harness.waitFor("the event after the refusal") { harness.lineCount() == 3 }
            kill(daemon.processIdentifier, SIGTERM)
            #expect(try await DaemonHarness.wait(daemon, timeout: .seconds(20)) == 0, "\(harness.stderr)")
            let lines = try String(contentsOfFile: harness.stdoutPath, encoding: .utf8).split(separator: "\n")
            #expect(lines.count == 3 && !lines[0].contains("openai_auditd"), "no rule of the operator's before")
            for line in lines.dropFirst() {
                #expect(
                    line.contains(#""openai_auditd":{"rules":["acme-login-outside-office"],"level":"high"}"#), "\(line)"
                )
            }
            #expect(harness.stderr.contains("acme.yml"), "the refusal names the file: \(harness.stderr)")
        }
    }

    @Test func rulesTestRulesListAndAMalformedRuleFileSayWhatTheyFound() async throws {
        try await DaemonHarness.with { harness in
            let events = harness.directory + "/events.jsonl"
            var lines: [String] = []
            for (index, item) in Self.cases.enumerated() {
                var json: [UInt8] = []
                Self.event(item.0, item.1, at: Self.now - 1000 + Int64(index), payload: item.2).write(
                    into: &json, spaced: false)
                lines.append(String(decoding: json, as: UTF8.self))
            }
            lines.append("not an event")
            try (lines.joined(separator: "\n") + "\n").write(toFile: events, atomically: true, encoding: .utf8)
            try harness.writeConfig(extra: "detections:\n  builtin_rules: \(Self.shipped)")
            let tested = try await harness.output(["rules", "test", events, "--config", harness.configPath])
            #expect(tested.status == 0, "\(harness.stderr)")
            let printed = tested.text.split(separator: "\n").map(String.init)
            #expect(printed.count == Self.cases.filter { !$0.3.isEmpty }.count, "\(tested.text)")
            #expect(
                printed.contains("allowlist-off ip_allowlist.config.deactivated critical openai-ip-allowlist-removed"))
            #expect(!tested.text.contains("invite-reader"))
            #expect(harness.stderr.contains("not an event"), "the bad line is named")

            let listed = try await harness.output(["rules", "list", "--config", harness.configPath])
            #expect(listed.status == 0)
            #expect(
                listed.text.contains("openai-credential-stuffing") && listed.text.contains("counted"), "\(listed.text)")

            // A rule file with an unknown modifier: 78, naming the file, the line and the rule.
            let broken = harness.directory + "/broken.yml"
            try """
            title: broken
            id: acme-broken
            level: high
            detection:
              selection:
                type|base64offset: x
              condition: selection
            """.write(toFile: broken, atomically: true, encoding: .utf8)
            try harness.writeConfig(extra: "detections:\n  builtin_rules: \(Self.shipped)\n  rules: [\(broken)]")
            let before = harness.stderr.count
            let refused = try await harness.output(["check", "--config", harness.configPath])
            let said = String(harness.stderr.dropFirst(before))
            #expect(refused.status == 78, "\(said)")
            #expect(
                said.contains("\(broken):6: rule 'acme-broken': detection.selection: unknown modifier 'base64offset'"),
                "\(said)")
        }
    }
}
