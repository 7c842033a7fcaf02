import AuditSimulator
import Foundation
import Testing

/// The API behind a corporate network: the simulator serves HTTPS with a certificate from a
/// private CA (made by openssl), reached through Debian's tinyproxy with Basic credentials,
/// as most company servers reach api.openai.com.
@Suite(.serialized) struct ProxyTests {
    static let now = Int64(Date().timeIntervalSince1970)
    static let user = "auditor"
    static let password = "s3cret-proxy-pass"

    /// A private CA with the API's certificate (for 127.0.0.1), an unrelated CA, and the
    /// simulator serving HTTPS with it behind a started tinyproxy; all cleaned up after.
    func withProxiedAPI(_ body: (DaemonHarness, TinyproxyHarness, String) async throws -> Void) async throws {
        let certificates = NSTemporaryDirectory() + "auditd-ca-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: certificates, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: certificates) }
        for ca in ["ca", "other-ca"] { try TestCertificates.makeCA(ca, in: certificates) }
        try TestCertificates.issue("api", subject: "/CN=api.test", altNames: "IP:127.0.0.1", in: certificates)
        try await DaemonHarness.with(
            certificate: certificates + "/api.pem", privateKey: certificates + "/api.key"
        ) { harness async throws in
            let proxy = try TinyproxyHarness(
                connectPorts: [harness.simulator.port], credentials: (Self.user, Self.password))
            do {
                try await proxy.start()
                try await body(harness, proxy, certificates)
            } catch {
                await proxy.close()
                throw error
            }
            await proxy.close()
        }
    }

    func proxyURL(_ proxy: TinyproxyHarness, password: String = password) -> String {
        "http://\(Self.user):\(password)@127.0.0.1:\(proxy.port)"
    }

    /// Through `HTTPS_PROXY` every event arrives once over CONNECT; `api.proxy` wins over the
    /// environment and `check` names it; `NO_PROXY` bypasses it. The proxy's password never
    /// appears in anything the daemon writes.
    @Test func httpsThroughAProxyFromTheEnvironmentOrTheConfiguration() async throws {
        try await withProxiedAPI { harness, proxy, certificates in
            #expect(harness.simulator.baseURL.hasPrefix("https://127.0.0.1:"))
            harness.simulator.addEvents(count: 100, from: Self.now - 1000, to: Self.now - 10)
            try harness.writeConfig(poll: "  start_at: -1h", api: "  tls: {ca_file: \(certificates)/ca.pem}")
            let target = "127.0.0.1:\(harness.simulator.port)"

            let status = try await harness.run(
                ["once", "--config", harness.configPath], environment: ["HTTPS_PROXY": proxyURL(proxy)])
            #expect(status == 0, "\(harness.stderr)")
            let delivered = try harness.deliveredIDs()
            #expect(delivered.count == 100 && Set(delivered).count == 100)
            #expect(proxy.connects(to: target) >= 1, "the proxy's log shows the CONNECT: \(proxy.log)")
            #expect(
                harness.stderr.contains("proxy=\"http://***:***@127.0.0.1:\(proxy.port) (from HTTPS_PROXY)\""),
                "\(harness.stderr)")
            #expect(!harness.stderr.contains(Self.user), "the proxy's user name is never logged")

            // api.proxy (here through its environment override) wins over HTTPS_PROXY.
            let dead = try RsyslogHarness.freePort()
            let check = try await harness.run(
                ["check", "--config", harness.configPath],
                environment: [
                    "OPENAI_AUDITD_API_PROXY": proxyURL(proxy), "HTTPS_PROXY": "http://127.0.0.1:\(dead)",
                ])
            #expect(check == 0, "\(harness.stderr)")
            let report = try String(contentsOfFile: harness.stdoutPath, encoding: .utf8)
            #expect(
                report.contains("through the proxy http://***:***@127.0.0.1:\(proxy.port) (from api.proxy)"),
                "\(report)")

            // NO_PROXY names the API's host: a direct connection, the proxy not asked.
            let before = proxy.connects(to: target)
            let direct = try await harness.run(
                ["check", "--config", harness.configPath],
                environment: ["HTTPS_PROXY": proxyURL(proxy), "NO_PROXY": "example.com, 127.0.0.1"])
            #expect(direct == 0, "\(harness.stderr)")
            #expect(try String(contentsOfFile: harness.stdoutPath, encoding: .utf8).contains("no proxy)"))
            #expect(proxy.connects(to: target) == before)

            let everything = harness.stderr + (try String(contentsOfFile: harness.stdoutPath, encoding: .utf8))
            #expect(!everything.contains(Self.password), "the proxy's password was written")
            #expect(!everything.contains(DaemonHarness.key), "the admin key was written")
        }
    }

    /// What cannot be trusted or reached is named: a certificate from another CA (the URL and
    /// the verification's reason), a proxy that is not there, credentials it refuses. Each is
    /// 69 for `check`, and no password is shown.
    @Test func whatCannotBeTrustedOrReachedIsNamed() async throws {
        try await withProxiedAPI { harness, proxy, certificates in
            let url = harness.simulator.baseURL
            try harness.writeConfig(poll: "  start_at: -1h", api: "  tls: {ca_file: \(certificates)/other-ca.pem}")
            var status = try await harness.run(
                ["check", "--config", harness.configPath], environment: ["HTTPS_PROXY": proxyURL(proxy)])
            #expect(status == 69, "\(harness.stderr)")
            #expect(
                harness.stderr.contains(url) && harness.stderr.contains("does not verify against the trust roots")
                    && harness.stderr.contains("trust roots: api.tls.ca_file \(certificates)/other-ca.pem"),
                "\(harness.stderr)")

            try harness.writeConfig(poll: "  start_at: -1h", api: "  tls: {ca_file: \(certificates)/ca.pem}")
            let dead = try RsyslogHarness.freePort()
            status = try await harness.run(
                ["check", "--config", harness.configPath], environment: ["HTTPS_PROXY": "http://127.0.0.1:\(dead)"])
            #expect(status == 69, "\(harness.stderr)")
            #expect(harness.stderr.contains("through the proxy http://127.0.0.1:\(dead) (from HTTPS_PROXY)"))

            status = try await harness.run(
                ["check", "--config", harness.configPath],
                environment: ["HTTPS_PROXY": proxyURL(proxy, password: "wrong-pass")])
            #expect(status == 69, "\(harness.stderr)")
            #expect(harness.stderr.contains("the proxy"), "\(harness.stderr)")
            #expect(!harness.stderr.contains("wrong-pass") && !harness.stderr.contains(Self.password))

            status = try await harness.run(
                ["check", "--config", harness.configPath], environment: ["HTTPS_PROXY": "socks5://127.0.0.1:1080"])
            #expect(status == 78, "\(harness.stderr)")
            #expect(harness.stderr.contains("HTTPS_PROXY: uses socks5://, which is not supported"), "\(harness.stderr)")
        }
    }
}
