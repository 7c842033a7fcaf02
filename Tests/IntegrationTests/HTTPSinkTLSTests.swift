import Foundation
import Testing

/// An HTTP sink's TLS and proxy, against a fake HEC over TLS with certificates of the test's
/// own CA: verification is always on, `ca_file`, `server_name`, a client certificate for a
/// server that requires one; a proxy only when the sink names one (`HTTPS_PROXY` is the
/// API's). The client, `HTTPSinkClient`, is the same for every HTTP sink.
@Suite struct HTTPSinkTLSTests {
    static let now = Int64(Date().timeIntervalSince1970)

    /// The test's CAs and certificates: `server` names only splunk.internal, `localhost`
    /// names localhost, `client` is a client certificate of `ca`.
    static func certificates(in directory: String) throws {
        for ca in ["ca", "other-ca"] { try TestCertificates.makeCA(ca, in: directory) }
        try TestCertificates.issue(
            "server", subject: "/CN=splunk.internal", altNames: "DNS:splunk.internal", in: directory)
        try TestCertificates.issue("localhost", subject: "/CN=localhost", altNames: "DNS:localhost", in: directory)
        try TestCertificates.issue("client", subject: "/CN=openai-auditd", in: directory)
    }

    /// One certificate set for every case, made once: openssl's key generation blocks a
    /// thread of the test pool for seconds on a loaded machine, and eight cases in parallel
    /// each making their own starved the other suites' polling.
    @Test func verificationIsAlwaysOnAndAProxyOnlyWhenNamed() async throws {
        try await DaemonHarness.with { harness async throws in
            try Self.certificates(in: harness.directory)
            var ids: [String] = []
            for situation in [
                "trusted", "wrong-ca", "server-name", "no-server-name", "client-certificate", "no-client-certificate",
                "proxy", "environment-proxy-ignored",
            ] {
                ids += harness.simulator.addEvents(count: 5, from: Self.now - 100)
                try await check(situation, harness, ids: ids)
            }
        }
    }

    /// One case, from a new state: what reaches the index is every event so far, or nothing.
    func check(_ situation: String, _ harness: DaemonHarness, ids: [String]) async throws {
        let directory = harness.directory
        for file in try FileManager.default.contentsOfDirectory(atPath: directory) where file.hasPrefix("state.json") {
            try FileManager.default.removeItem(atPath: directory + "/" + file)
        }
        let index = directory + "/hec-index-\(situation).jsonl"
        let certificate = situation.contains("server-name") ? "server" : "localhost"
        var arguments = [
            index, "--token", SplunkHECSinkTests.token, "--tls", "\(directory)/\(certificate).pem",
            "\(directory)/\(certificate).key",
        ]
        if situation.contains("client-certificate") { arguments += ["--client-ca", "\(directory)/ca.pem"] }
        let hec = try ToolProcess("fake-splunk-hec.py", arguments)
        defer { hec.stop() }
        let host = situation.contains("server-name") ? "127.0.0.1" : "localhost"
        var tls = "ca_file: \(directory)/\(situation == "wrong-ca" ? "other-ca" : "ca").pem"
        if situation == "server-name" { tls += ", server_name: splunk.internal" }
        if situation == "client-certificate" {
            tls += ", cert_file: \(directory)/client.pem, key_file: \(directory)/client.key"
        }
        let proxy = try TinyproxyHarness(connectPorts: [hec.port], credentials: ("auditd", "proxy-secret-1"))
        do {
            if situation == "proxy" { try await proxy.start() }
            try await deliver(situation, harness, hec, proxy, host: host, tls: tls, ids: ids, index: index)
        } catch {
            await proxy.close()
            throw error
        }
        await proxy.close()
    }

    func deliver(
        _ situation: String, _ harness: DaemonHarness, _ hec: ToolProcess, _ proxy: TinyproxyHarness, host: String,
        tls: String, ids: [String], index: String
    ) async throws {
        try harness.writeConfig(
            poll: "  start_at: -1h",
            extra: """
                sinks:
                  - type: splunk_hec
                    url: https://\(host):\(hec.port)
                    tls: {\(tls)}
                \(situation == "proxy" ? "    proxy: http://auditd:proxy-secret-1@127.0.0.1:\(proxy.port)" : "")
                """)
        var environment = SplunkHECSinkTests.environment
        if situation == "environment-proxy-ignored" {
            environment["HTTPS_PROXY"] = "http://127.0.0.1:\(try RsyslogHarness.freePort())"
        }
        let expected: String? =
            switch situation {
            case "wrong-ca": "TLS: its certificate does not verify against the trust roots"
            case "no-server-name": "TLS: its certificate does not name 127.0.0.1"
            case "no-client-certificate": "https://localhost:\(hec.port): TLS: tlsv1 alert certificate required"
            default: nil
            }
        let mark = harness.stderr.count
        let command = expected == nil ? "once" : "check"
        let status = try await harness.run([command, "--config", harness.configPath], environment: environment)
        let said = String(harness.stderr.dropFirst(mark))
        if let expected {
            #expect(status == 74, "\(situation): \(said)")
            #expect(said.contains(expected), "\(situation): \(said)")
            #expect(SplunkHECSinkTests.ids(index).isEmpty, "\(situation)")
        } else {
            #expect(status == 0, "\(situation): \(said)")
            #expect(SplunkHECSinkTests.ids(index).sorted() == ids.sorted(), "\(situation)")
        }
        if situation == "proxy" {
            #expect(proxy.connects(to: "localhost:\(hec.port)") >= 1, "through the proxy: \(proxy.log)")
            #expect(!said.contains("proxy-secret-1"))
        }
    }
}
