import Foundation
import Testing

/// Debian's `tinyproxy` on loopback with a configuration of its own: an HTTP proxy that
/// CONNECTs only to `connectPorts`, asks for Basic credentials when given some, and logs
/// every request line (`Request (file descriptor N): CONNECT host:port HTTP/1.1`).
final class TinyproxyHarness: @unchecked Sendable {
    let directory: String
    let port: Int
    var process: Process?
    var logPath: String { directory + "/tinyproxy.log" }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    init(connectPorts: [Int], credentials: (user: String, password: String)? = nil) throws {
        directory = NSTemporaryDirectory() + "auditd-tinyproxy-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        port = try RsyslogHarness.freePort()
        var config = """
            Port \(port)
            Listen 127.0.0.1
            Timeout 30
            LogFile "\(logPath)"
            LogLevel Info
            PidFile "\(directory)/tinyproxy.pid"
            MaxClients 20
            Allow 127.0.0.1
            DisableViaHeader Yes

            """
        for allowed in connectPorts { config += "ConnectPort \(allowed)\n" }
        if let credentials { config += "BasicAuth \(credentials.user) \(credentials.password)\n" }
        try config.write(toFile: directory + "/tinyproxy.conf", atomically: true, encoding: .utf8)
    }

    /// Starts it in the foreground and waits until it listens.
    func start() async throws {
        let binary = "/usr/bin/tinyproxy"
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw HarnessError(
                "\(binary) is missing: the proxy tests need Debian's tinyproxy ('make setup' installs it)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-d", "-c", directory + "/tinyproxy.conf"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        let deadline = ContinuousClock.now + .seconds(10)
        while !log.contains("Accepting connections") {
            guard process.isRunning, ContinuousClock.now < deadline else {
                throw HarnessError("tinyproxy did not start: \(log)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// The CONNECT request lines it logged for `host:port`.
    func connects(to target: String) -> Int {
        log.components(separatedBy: "CONNECT \(target) HTTP/1.1").count - 1
    }

    /// Ends the proxy this harness started (by its PID) and removes its directory.
    func close() async {
        if let process, process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            let deadline = ContinuousClock.now + .seconds(5)
            while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
