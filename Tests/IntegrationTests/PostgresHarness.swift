import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A real PostgreSQL server (Debian's `postgresql`): a cluster made by `initdb` in a
/// temporary directory, as the unprivileged user `nobody` when the tests run as root (the
/// server refuses root), `postgres` on a loopback port with password (SCRAM) logins only.
/// Stopped by its PID, never by name. With `tls`, it serves TLS with a certificate for
/// 127.0.0.1 and localhost signed by the test CA `ca.pem` in its directory.
final class PostgresHarness: @unchecked Sendable {
    let directory: String
    let port: Int
    let user = "auditd"
    let password = "correct horse battery staple"
    var passwordFile: String { directory + "/password" }
    var data: String { directory + "/data" }
    var logPath: String { directory + "/postgres.log" }
    var process: Process?
    var url: String { "postgres://\(user)@127.0.0.1:\(port)/auditd?sslmode=disable" }
    let tls: Bool
    var caFile: String { directory + "/ca.pem" }

    static func binary(_ name: String) throws -> String {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard let version = versions.sorted().last else {
            throw HarnessError(
                "PostgreSQL is not installed (no /usr/lib/postgresql): the coordination tests need Debian's postgresql ('make setup' installs it)"
            )
        }
        return "/usr/lib/postgresql/\(version)/bin/\(name)"
    }

    init(tls: Bool = false) throws {
        self.tls = tls
        directory = NSTemporaryDirectory() + "auditd-postgres-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        port = try RsyslogHarness.freePort()
        try password.write(toFile: passwordFile, atomically: true, encoding: .utf8)
        var owned = [directory, passwordFile]
        if tls {
            try TestCertificates.makeCA("ca", in: directory)
            try TestCertificates.issue(
                "server", subject: "/CN=localhost", altNames: "DNS:localhost,IP:127.0.0.1", in: directory)
            // The server refuses a key others may read.
            chmod(directory + "/server.key", 0o600)
            owned += [directory + "/server.pem", directory + "/server.key"]
        }
        if getuid() == 0 {
            // The server's files belong to the user it runs as.
            for path in owned { chown(path, 65534, 65534) }
        }
        try runTool(
            "initdb",
            [
                "-D", data, "-U", user, "--pwfile", passwordFile, "--auth", "scram-sha-256", "--no-sync",
                "--encoding", "UTF8", "--locale", "C",
            ])
    }

    /// Runs one of PostgreSQL's programs as the cluster's user, to completion.
    func runTool(_ name: String, _ arguments: [String]) throws {
        let process = try unprivileged(name, arguments)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw HarnessError("\(name) failed (\(process.terminationStatus)): \(text)")
        }
    }

    func unprivileged(_ name: String, _ arguments: [String]) throws -> Process {
        let process = Process()
        let binary = try Self.binary(name)
        if getuid() == 0 {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", "--", binary] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = arguments
        }
        process.environment = ["PATH": "/usr/bin:/bin", "LC_ALL": "C", "PGPASSWORD": password]
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        return process
    }

    /// Starts the server and waits until it takes connections; makes the database once.
    func start() async throws {
        var arguments = [
            "-D", data, "-p", "\(port)", "-h", "127.0.0.1", "-k", directory, "-c", "fsync=off",
            "-c", "logging_collector=off", "-c", "max_connections=20",
        ]
        if tls {
            arguments += [
                "-c", "ssl=on", "-c", "ssl_cert_file=\(directory)/server.pem", "-c",
                "ssl_key_file=\(directory)/server.key",
            ]
        }
        let process = try unprivileged("postgres", arguments)
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        self.process = process
        let deadline = ContinuousClock.now + .seconds(60)
        while !RsyslogHarness.accepts(port) || !serverLog.contains("ready to accept connections") {
            guard process.isRunning, ContinuousClock.now < deadline else {
                throw HarnessError("postgres did not start on port \(port): \(serverLog.suffix(2000))")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        if !FileManager.default.fileExists(atPath: directory + "/made") {
            try runTool("createdb", ["-h", "127.0.0.1", "-p", "\(port)", "-U", user, "-w", "auditd"])
            _ = FileManager.default.createFile(atPath: directory + "/made", contents: nil)
        }
    }

    /// Runs SQL as the cluster's owner (`psql`, stopping at the first error).
    func sql(_ statements: String) throws {
        try runTool(
            "psql",
            [
                "-h", "127.0.0.1", "-p", "\(port)", "-U", user, "-w", "-v", "ON_ERROR_STOP=1", "-d", "auditd",
                "-c", statements,
            ])
    }

    var serverLog: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Stops the server this harness started (by its PID; SIGINT: a fast shutdown).
    func stop() async {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGINT)
        let deadline = ContinuousClock.now + .seconds(30)
        while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        self.process = nil
    }

    func close() async {
        await stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
