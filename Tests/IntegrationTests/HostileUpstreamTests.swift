import AuditSimulator
import Foundation
import Testing

/// The built binary against an upstream that misbehaves the ways connectors were burned by:
/// events stamped in the future or in milliseconds, a server clock apart from ours, pages
/// that lie about `has_more`, a cursor that cycles back, a body far too big.
@Suite(.serialized) struct HostileUpstreamTests {
    static let now = Int64(Date().timeIntervalSince1970)

    func completeBefore(_ harness: DaemonHarness) throws -> Int64 {
        try #require((try harness.position("stdout")["complete_before"] as? NSNumber)?.int64Value)
    }

    /// One event a year ahead, one in milliseconds and one at the end of time: each delivered
    /// once, named in a warning, and no position follows them; events after them in real time
    /// still arrive. The server's clock (its `Date`) bounds the position, not ours. One at 0 is
    /// set aside (`anItemThatIsNoEventIsSetAsideAndTheRestArrives`).
    @Test func oddTimestampsAreDeliveredOnceAndMoveNoPosition() async throws {
        try await DaemonHarness.with { harness async throws in
            let now = Self.now
            harness.simulator.addEvents(count: 100, from: now - 1000, to: now - 10)
            let odd: [(String, Int64)] = [
                ("audit_log-year-ahead", now + 365 * 86_400), ("audit_log-milliseconds", now * 1000),
                ("audit_log-int64-max", Int64.max),
            ]
            _ = try harness.simulator.addRaw(
                odd.map {
                    .object([
                        ("id", .string($0.0)), ("type", .string("login.failed")), ("effective_at", .integer($0.1)),
                    ])
                }
            )
            try harness.writeConfig(poll: "  start_at: beginning")
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 0, "\(harness.stderr)")
            var delivered = try harness.deliveredIDs()
            #expect(delivered.count == 103 && Set(delivered).count == 103, "each once: \(delivered.count)")
            for (id, stamp) in odd {
                #expect(
                    harness.stderr.contains("event.id=\(id)") && harness.stderr.contains("event.effective_at=\(stamp)"),
                    "a warning names \(id)")
            }
            let first = try completeBefore(harness)
            #expect(first <= Int64(Date().timeIntervalSince1970) + 1, "the position stays at the server's clock")

            // The server's clock is now ten minutes ahead of ours: what it holds up to then arrives.
            harness.simulator.clockSkew.withLock { $0 = 600 }
            harness.simulator.addEvents(count: 100, from: now + 100, to: now + 500)
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 0, "\(harness.stderr)")
            delivered = try harness.deliveredIDs()
            #expect(delivered.count == 203 && Set(delivered).count == 203, "the later events, and nothing twice")
            let second = try completeBefore(harness)
            #expect(second >= now + 500 && second <= Int64(Date().timeIntervalSince1970) + 601, "\(second)")
        }
    }

    /// One item of a page whose `effective_at` is a string, one stamped at 0: on 0ffbb0c the
    /// page failed every attempt (69 after 8, none of the 50 events delivered, and the only
    /// way out lost what lay around it). Each is set aside whole in the dead-letter file beside
    /// the state and named in an error line; the 50 arrive; a second run re-reads the
    /// lookback and sets nothing aside twice.
    @Test func anItemThatIsNoEventIsSetAsideAndTheRestArrives() async throws {
        try await DaemonHarness.with { harness async throws in
            harness.simulator.addEvents(count: 50, from: Self.now - 600, to: Self.now - 10)
            let poison = #"{"id":"audit_log-poison","type":"login.failed","effective_at":"2024-06-01T00:00:00Z"}"#
            let value = JSONValue.object([
                ("id", .string("audit_log-poison")), ("type", .string("login.failed")),
                ("effective_at", .string("2024-06-01T00:00:00Z")),
            ])
            _ = try harness.simulator.addRaw([value], listedAt: Self.now - 300)
            _ = try harness.simulator.addRaw([
                .object([
                    ("id", .string("audit_log-zero")), ("type", .string("login.failed")), ("effective_at", .integer(0)),
                ])
            ])
            try harness.writeConfig(poll: "  start_at: beginning")
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 0, "\(harness.stderr)")
            let delivered = try harness.deliveredIDs()
            #expect(delivered.count == 50 && Set(delivered).count == 50, "\(delivered.count)")
            let deadLetters = harness.statePath + ".dead-letters"
            let lines = try String(contentsOfFile: deadLetters, encoding: .utf8).split(separator: "\n")
            #expect(lines.count == 2)
            let items = try lines.map { try JSONDecoder().decode([String: String?].self, from: Data($0.utf8)) }
            #expect(Set(items.compactMap { $0["item"] ?? nil }).contains(poison), "kept whole, as sent")
            #expect(Set(items.compactMap { $0["id"] ?? nil }) == ["audit_log-poison", "audit_log-zero"])
            let logged = harness.stderr.split(separator: "\n").filter {
                $0.contains("set aside in the dead-letter file")
            }
            #expect(logged.count == 2, "\(harness.stderr)")
            #expect(
                logged.contains {
                    $0.contains("event.id=audit_log-poison") && $0.contains("its effective_at is not a number")
                })
            #expect(logged.allSatisfy { $0.contains("dead_letters.path=\(deadLetters)") })
            #expect(harness.stderr.contains("cycle.set_aside=2"))
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 0, "\(harness.stderr)")
            #expect(try String(contentsOfFile: deadLetters, encoding: .utf8).split(separator: "\n").count == 2)
            #expect(try harness.deliveredIDs().count == 50)
            #expect(
                harness.stderr.split(separator: "\n").filter { $0.contains("set aside in the dead-letter") }.count == 2)
        }
    }

    /// Pages that lie: `has_more: true` with nothing to continue after, or a cursor that
    /// leads back to a page already read (A → B → A, which would loop forever). The run fails
    /// naming it (69), nothing is delivered from that window, and the next run delivers
    /// everything once.
    @Test(arguments: ["empty page with has_more", "cursor cycling back"])
    func pagesThatLieFailTheRunAndLoseNothing(_ lie: String) async throws {
        try await DaemonHarness.with { harness async throws in
            harness.simulator.addEvents(count: 500, from: Self.now - 1000, to: Self.now - 10)
            try harness.writeConfig(poll: "  start_at: -1h")
            harness.simulator.faults.enqueue(.pass)  // the start-up key check
            if lie == "empty page with has_more" {
                harness.simulator.faults.enqueue(.malformed(.emptyHasMore))
            } else {
                harness.simulator.faults.enqueue(.pass, count: 2)  // pages 1 and 2
                harness.simulator.faults.enqueue(.rewind)  // page 3 is page 1 again
            }
            let failed = try await harness.run(["once", "--config", harness.configPath], timeout: .seconds(60))
            #expect(failed == 69, "\(harness.stderr)")
            let reason = lie == "empty page with has_more" ? "has no last_id to continue after" : ", seen before"
            #expect(harness.stderr.contains("has_more is true but the") && harness.stderr.contains(reason))
            #expect(harness.lineCount() == 0)
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 0, "\(harness.stderr)")
            let delivered = try harness.deliveredIDs()
            #expect(delivered.count == 500 && Set(delivered).count == 500)
        }
    }

    /// An API that rejects `tenant_only`: under the default (`auto`) one notice, and the
    /// organization's events all arrive; with `include_tenant_events: true` it is an error.
    @Test func aRejectedTenantOnlyIsANoticeUnderAutoAndAnErrorUnderTrue() async throws {
        try await DaemonHarness.with { harness async throws in
            harness.simulator.addEvents(
                count: 200, from: Self.now - 1000, to: Self.now - 10, types: EventGenerator.organizationTypes)
            harness.simulator.rejectTenantOnly.withLock { $0 = true }
            try harness.writeConfig(poll: "  start_at: -1h")
            let strict = try await harness.run(
                ["once", "--config", harness.configPath],
                environment: ["OPENAI_AUDITD_API_INCLUDE_TENANT_EVENTS": "true"])
            #expect(strict == 78, "\(harness.stderr)")
            #expect(harness.stderr.contains("Unrecognized request argument supplied: tenant_only"))
            #expect(harness.stderr.contains("set api.include_tenant_events to auto or false"))
            #expect(harness.lineCount() == 0)
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 0, "\(harness.stderr)")
            let notice = "the API does not accept tenant_only"
            #expect(harness.stderr.components(separatedBy: notice).count == 2, "one notice: \(harness.stderr)")
            let delivered = try harness.deliveredIDs()
            #expect(delivered.count == 200 && Set(delivered).count == 200)
        }
    }

    /// A 96 MB body, streamed without Content-Length, is cut off at `api.max_response_bytes`
    /// (32 MiB): an error naming the limit, retried, and the process never holds the body
    /// (peak RSS measured by the kernel, below 100 MB).
    @Test func aHugeBodyIsCutOffAndMemoryStaysBounded() async throws {
        try await DaemonHarness.with { harness async throws in
            harness.simulator.addEvents(count: 300, from: Self.now - 1000, to: Self.now - 10)
            try harness.writeConfig(poll: "  start_at: -1h")
            harness.simulator.faults.enqueue(.pass)
            harness.simulator.faults.enqueue(.huge(bytes: 96 << 20))
            // python3 reports the child's peak RSS (getrusage), which only the kernel knows.
            let peak = harness.directory + "/peak-rss-kb"
            let script =
                "import resource, subprocess, sys\n"
                + "status = subprocess.call(sys.argv[2:])\n"
                + "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
                + "sys.exit(status)\n"
            let process = try harness.launch(
                ["-c", script, peak, try DaemonHarness.binary(), "once", "--config", harness.configPath],
                executable: "/usr/bin/python3")
            #expect(try await DaemonHarness.wait(process, timeout: .seconds(120)) == 0, "\(harness.stderr)")
            #expect(harness.stderr.contains("larger than api.max_response_bytes (33554432 bytes)"), "\(harness.stderr)")
            let delivered = try harness.deliveredIDs()
            #expect(delivered.count == 300 && Set(delivered).count == 300)
            let kilobytes = try #require(Int(try String(contentsOfFile: peak, encoding: .utf8)))
            #expect(kilobytes < 100_000, "peak RSS \(kilobytes) kB")
        }
    }

    /// A refusal at start that is not the configuration's (a gateway's 404, a redirect) is no
    /// 78, which would keep a systemd unit down for good: `check` and `once` exit 69, and `run`
    /// starts, warns, and delivers once the API answers again. A 400 that names a parameter
    /// the configuration sets (an event type the API does not know) is still 78.
    @Test func aRefusalThatIsNotTheConfigurationsIsRetriedNotFatal() async throws {
        try await DaemonHarness.with { harness async throws in
            harness.simulator.addEvents(count: 20, from: Self.now - 300, to: Self.now - 10)
            try harness.writeConfig(poll: "  interval: 1s\n  start_at: -1h")
            for status in [404, 302] {
                harness.simulator.faults.enqueue(.status(status, retryAfter: nil))
                #expect(try await harness.run(["check", "--config", harness.configPath]) == 69, "\(harness.stderr)")
                #expect(harness.stderr.contains("(HTTP \(status))"), "\(harness.stderr)")
                #expect(!harness.stderr.contains("check api.filters"), "no hint at the configuration")
            }
            harness.simulator.faults.enqueue(.status(404, retryAfter: nil))
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 69, "\(harness.stderr)")
            #expect(try harness.deliveredIDs().isEmpty)

            // The start-up request and the first cycle's are refused; the next poll delivers.
            harness.simulator.faults.enqueue(.status(404, retryAfter: nil), count: 2)
            let daemon = try harness.launch(["run", "--config", harness.configPath])
            try await harness.waitFor("all 20 delivered by run") { try harness.deliveredIDs().count >= 20 }
            #expect(daemon.isRunning, "a 404 at start is not the end of the daemon")
            #expect(harness.stderr.contains("the API refused the first request; starting anyway"), "\(harness.stderr)")
            kill(daemon.processIdentifier, SIGTERM)
            #expect(try await DaemonHarness.wait(daemon, timeout: .seconds(30)) == 0)
            let delivered = try harness.deliveredIDs()
            #expect(delivered.count == 20 && Set(delivered).count == 20)

            try harness.writeConfig(poll: "  start_at: -1h", api: "  filters:\n    event_types: [no.such_type]")
            #expect(try await harness.run(["once", "--config", harness.configPath]) == 78, "\(harness.stderr)")
            #expect(harness.stderr.contains("event_types") && harness.stderr.contains("check api.filters"))
        }
    }

    /// The API's certificate from another CA: `check` and `once` fail at once (69) without a
    /// retry, saying which URL, why, and which trust roots, in words: no library type, no
    /// source path; which reason (a CA not among the roots, expired, another name), found by a
    /// second look at the certificate the server offers. `run` stays up, says so at error
    /// level, and retries at every poll.
    @Test func anUntrustedCertificateIsNamedAtOnceAndNotRetriedByOnce() async throws {
        let certificates = NSTemporaryDirectory() + "auditd-ca-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: certificates, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: certificates) }
        for ca in ["ca", "other-ca"] { try TestCertificates.makeCA(ca, in: certificates) }
        try TestCertificates.issue("api", subject: "/CN=api.test", altNames: "IP:127.0.0.1", in: certificates)
        try TestCertificates.issue(
            "elsewhere", subject: "/CN=elsewhere", altNames: "DNS:elsewhere.test", in: certificates)
        try TestCertificates.issue(
            "expired", subject: "/CN=api.test", altNames: "IP:127.0.0.1",
            validity: ("20200101000000Z", "20200102000000Z"), in: certificates)
        for (certificate, roots, reason) in [
            ("api", "other-ca", "issued by a CA that is not among the trust roots"),
            ("elsewhere", "ca", "does not name"),
            ("expired", "ca", "its certificate expired on 2020-01-02T00:00:00Z"),
        ] {
            try await DaemonHarness.with(
                certificate: "\(certificates)/\(certificate).pem", privateKey: "\(certificates)/\(certificate).key"
            ) { harness async throws in
                harness.simulator.addEvents(count: 5, from: Self.now - 300, to: Self.now - 10)
                let caFile = "\(certificates)/\(roots).pem"
                try harness.writeConfig(poll: "  interval: 1s\n  start_at: -1h", api: "  tls: {ca_file: \(caFile)}")
                for command in ["check", "once"] {
                    let earlier = harness.stderr.count
                    #expect(
                        try await harness.run([command, "--config", harness.configPath]) == 69, "\(harness.stderr)")
                    let text = String(harness.stderr.dropFirst(earlier))
                    #expect(text.contains("the API's TLS certificate is not trusted"), "\(text)")
                    #expect(text.contains(harness.simulator.baseURL) && text.contains(reason), "\(text)")
                    #expect(text.contains("trust roots: api.tls.ca_file \(caFile)"), "\(text)")
                    #expect(!text.contains("retrying") && !text.contains("not reachable yet"), "no retry: \(text)")
                    for dump in ["NIOSSL", "BoringSSL", "handshake.cc", "OPENSSL_internal", ".swift:"] {
                        #expect(!text.contains(dump), "no library text (\(dump)): \(text)")
                    }
                }
                #expect(try harness.deliveredIDs().isEmpty)
                let earlier = harness.stderr.count
                let daemon = try harness.launch(["run", "--config", harness.configPath])
                try await harness.waitFor("run to say it at start and at a poll") {
                    harness.stderr.dropFirst(earlier).components(separatedBy: "TLS certificate is not trusted").count
                        > 2
                }
                #expect(daemon.isRunning, "run keeps retrying")
                #expect(harness.stderr.contains("the API cannot be trusted; nothing is read until it can"))
                kill(daemon.processIdentifier, SIGTERM)
                #expect(try await DaemonHarness.wait(daemon, timeout: .seconds(30)) == 0)
            }
        }
    }
}
