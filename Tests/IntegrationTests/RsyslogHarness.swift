import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A real `rsyslogd` listening on a unix socket, UDP, TCP, TLS, mutual TLS and RELP (`imrelp`,
/// plain and TLS), writing every message's parsed RFC 5424 fields as JSON lines; with its own
/// CA and certificates.
final class RsyslogHarness: @unchecked Sendable {
    let directory: String
    let unixSocket: String
    let udpPort: Int
    let tcpPort: Int
    let tlsPort: Int
    let mutualTLSPort: Int
    /// A plain TCP input on the IPv6 loopback.
    let ipv6Port: Int
    let relpPort: Int
    let relpTLSPort: Int
    var output: String { directory + "/out.jsonl" }
    var process: Process?

    init() throws {
        directory = NSTemporaryDirectory() + "auditd-rsyslog-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        unixSocket = directory + "/log.sock"
        let ports = try (0..<7).map { _ in try Self.freePort() }
        (udpPort, tcpPort, tlsPort, mutualTLSPort, ipv6Port) = (ports[0], ports[1], ports[2], ports[3], ports[4])
        (relpPort, relpTLSPort) = (ports[5], ports[6])
        try makeCertificates()
        try writeConfig()
        try check()
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                guard bind(fd, pointer, length) == 0 else { return -1 }
                return getsockname(fd, pointer, &length)
            }
        }
        guard bound == 0 else { throw HarnessError("no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    func run(_ tool: String, _ arguments: [String]) throws {
        try TestCertificates.run(tool, arguments, in: directory)
    }

    /// A CA, a server certificate for localhost, a client certificate (CN client-cn)
    /// and an unrelated CA for the wrong-CA test.
    func makeCertificates() throws {
        for ca in ["ca", "other-ca"] { try TestCertificates.makeCA(ca, in: directory) }
        // DNS names only: NIOSSL accepts a certificate whose IP SAN matches the address it
        // connected to whatever server_name says, so an IP SAN would hide a wrong name.
        try TestCertificates.issue("server", subject: "/CN=localhost", altNames: "DNS:localhost", in: directory)
        try TestCertificates.issue("client", subject: "/CN=client-cn", in: directory)
    }

    func writeConfig() throws {
        let config = """
            global(maxMessageSize="256k" parser.escapeControlCharactersOnReceive="off" workDirectory="\(directory)"
                   defaultNetstreamDriverCAFile="\(directory)/ca.pem"
                   defaultNetstreamDriverCertFile="\(directory)/server.pem"
                   defaultNetstreamDriverKeyFile="\(directory)/server.key")
            module(load="imuxsock" SysSock.Use="off")
            input(type="imuxsock" Socket="\(unixSocket)" UseSpecialParser="off" ParseHostname="on" IgnoreTimestamp="off")
            module(load="imudp")
            input(type="imudp" address="127.0.0.1" port="\(udpPort)")
            module(load="imtcp" maxSessions="200")
            input(type="imtcp" address="127.0.0.1" port="\(tcpPort)")
            input(type="imtcp" address="::1" port="\(ipv6Port)")
            input(type="imtcp" address="127.0.0.1" port="\(tlsPort)" streamDriver.name="gtls" streamDriver.mode="1"
                  streamDriver.authMode="anon" gnutlsPriorityString="NORMAL")
            input(type="imtcp" address="127.0.0.1" port="\(mutualTLSPort)" streamDriver.name="gtls" streamDriver.mode="1"
                  streamDriver.authMode="x509/name" permittedPeer=["client-cn"] gnutlsPriorityString="NORMAL")
            module(load="imrelp")
            input(type="imrelp" address="127.0.0.1" port="\(relpPort)")
            input(type="imrelp" address="127.0.0.1" port="\(relpTLSPort)" tls="on" tls.caCert="\(directory)/ca.pem"
                  tls.myCert="\(directory)/server.pem" tls.myPrivKey="\(directory)/server.key" tls.authMode="certvalid")
            template(name="fields" type="list" option.jsonf="on") {
                property(outname="pri" name="pri" format="jsonf")
                property(outname="protocol-version" name="protocol-version" format="jsonf")
                property(outname="timestamp" name="timestamp" dateFormat="rfc3339" format="jsonf")
                property(outname="hostname" name="hostname" format="jsonf")
                property(outname="app-name" name="app-name" format="jsonf")
                property(outname="procid" name="procid" format="jsonf")
                property(outname="msgid" name="msgid" format="jsonf")
                property(outname="structured-data" name="structured-data" format="jsonf")
                property(outname="msg" name="msg" format="jsonf")
            }
            action(type="omfile" file="\(output)" template="fields" flushOnTXEnd="on" asyncWriting="off")
            """
        try config.write(toFile: directory + "/rsyslog.conf", atomically: true, encoding: .utf8)
    }

    func check() throws {
        try run("/usr/sbin/rsyslogd", ["-N1", "-f", directory + "/rsyslog.conf"])
    }

    /// A harness whose rsyslogd is up. A port chosen free can be taken before rsyslogd binds it
    /// (by another test's listener or an outgoing connection's local port), and rsyslogd then
    /// runs without that input: so a start that does not come up is tried again on new ports,
    /// and the error names what did not come up each time.
    static func started() async throws -> RsyslogHarness {
        var failures: [String] = []
        for _ in 0..<3 {
            let rsyslog = try RsyslogHarness()
            do {
                try await rsyslog.start()
                return rsyslog
            } catch {
                failures.append("\(error)")
                await rsyslog.close()
            }
        }
        throw HarnessError("rsyslogd did not come up in three tries: " + failures.joined(separator: "; "))
    }

    func start() async throws {
        if let process, process.isRunning { return }
        let rsyslogd = Process()
        rsyslogd.executableURL = URL(fileURLWithPath: "/usr/sbin/rsyslogd")
        rsyslogd.arguments = ["-n", "-f", directory + "/rsyslog.conf", "-i", directory + "/rsyslogd.pid"]
        rsyslogd.standardOutput = FileHandle.nullDevice
        let stderrPath = directory + "/rsyslogd.stderr"
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        rsyslogd.standardError = FileHandle(forWritingAtPath: stderrPath)
        try rsyslogd.run()
        process = rsyslogd
        // Ready when every TCP port accepts, the unix socket exists, and a UDP datagram comes
        // out the other end: one sent before imudp binds is lost without a word, which on a
        // loaded machine made the UDP test lose events that were never the daemon's to lose.
        // 40 s: a CI machine running the suites side by side has taken more than 12.
        let probe = "harness-probe-\(udpPort)"
        let ports = [tcpPort, tlsPort, mutualTLSPort, relpPort, relpTLSPort]
        for _ in 0..<2000 {
            guard rsyslogd.isRunning else {
                throw HarnessError("rsyslogd exited with status \(rsyslogd.terminationStatus): \(startupErrors())")
            }
            if FileManager.default.fileExists(atPath: unixSocket), ports.allSatisfy(Self.accepts) {
                if !messages(hostname: probe).isEmpty { return }
                Self.sendUDP("<14>1 2026-01-01T00:00:00Z \(probe) probe - - - ready", port: udpPort)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let closed = ports.filter { !Self.accepts($0) }.map(String.init)
        let missing = [
            FileManager.default.fileExists(atPath: unixSocket) ? nil : "the unix socket",
            closed.isEmpty ? nil : "TCP port(s) " + closed.joined(separator: ", "),
            messages(hostname: probe).isEmpty ? "the UDP probe on port \(udpPort)" : nil,
        ].compactMap { $0 }
        try? await stop()
        throw HarnessError(
            "rsyslogd did not start listening within 40 s (missing: \(missing.joined(separator: ", "))): "
                + startupErrors())
    }

    /// What rsyslogd said about itself: its stderr and its own messages in the output.
    func startupErrors() -> String {
        let stderr = (try? String(contentsOfFile: directory + "/rsyslogd.stderr", encoding: .utf8)) ?? ""
        let own = (FileManager.default.contents(atPath: output).map { String(decoding: $0, as: UTF8.self) } ?? "")
            .split(separator: "\n").filter { $0.contains("\"app-name\":\"rsyslogd") }.suffix(5)
        let said = (stderr.split(separator: "\n").suffix(5) + own).joined(separator: " | ")
        return said.isEmpty ? "it said nothing" : said
    }

    static func sendUDP(_ text: String, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { Glibc.close(fd) }
        let bytes = Array(text.utf8)
        _ = withLoopback(port: port) { sendto(fd, bytes, bytes.count, 0, $0, $1) }
    }

    static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(fd) }
        return withLoopback(port: port) { connect(fd, $0, $1) } == 0
    }

    /// 127.0.0.1:`port` as the `sockaddr` the socket calls take: the harness's one address helper.
    static func withLoopback<R>(port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }

    /// SIGTERM, and SIGKILL if rsyslogd has not exited after 3 s (it can linger over open
    /// connections); returns once it is gone, so its ports are free and its clients see it go.
    func stop() async throws {
        guard let process, process.isRunning else { return }
        process.terminate()
        for _ in 0..<300 where process.isRunning { try await Task.sleep(for: .milliseconds(10)) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        for _ in 0..<500 where process.isRunning { try await Task.sleep(for: .milliseconds(10)) }
        guard !process.isRunning else { throw HarnessError("rsyslogd did not exit") }
        self.process = nil
    }

    func close() async {
        try? await stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Messages received with `hostname` (each test sends with its own), parsed.
    /// Lines are matched as text before they are parsed: parsing every 100 KB message on
    /// every poll would dominate the run.
    func messages(hostname: String) -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: output) else { return [] }
        let marker = "\"hostname\":\"\(hostname)\""
        return data.split(separator: UInt8(ascii: "\n")).filter { String(decoding: $0, as: UTF8.self).contains(marker) }
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any] }
            .filter { $0["hostname"] as? String == hostname }
    }
}
