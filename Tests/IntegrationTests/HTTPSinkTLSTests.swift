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

    @Test(arguments: [
        "trusted", "wrong-ca", "server-name", "no-server-name", "client-certificate", "no-client-certificate",
        "proxy", "environment-proxy-ignored",
    ])
    func verificationIsAlwaysOn(_ situation: String) async throws {
        try await DaemonHarness.with { harness async throws in
            let directory = harness.directory
            try Self.certificates(in: directory)
            let index = directory + "/hec-index.jsonl"
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
            let ids = harness.simulator.addEvents(count: 5, from: Self.now - 100)
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
        if let expected {
            let status = try await harness.run(["check", "--config", harness.configPath], environment: environment)
            #expect(status == 74, "\(harness.stderr)")
            #expect(harness.stderr.contains(expected), "\(harness.stderr)")
            #expect(SplunkHECSinkTests.ids(index).isEmpty)
        } else {
            let status = try await harness.run(["once", "--config", harness.configPath], environment: environment)
            #expect(status == 0, "\(harness.stderr)")
            #expect(SplunkHECSinkTests.ids(index).sorted() == ids.sorted())
        }
        if situation == "proxy" {
            #expect(proxy.connects(to: "localhost:\(hec.port)") >= 1, "through the proxy: \(proxy.log)")
            #expect(!harness.stderr.contains("proxy-secret-1"))
        }
    }
}
