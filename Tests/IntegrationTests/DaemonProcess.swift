import AuditSimulator
import Foundation
import Synchronization
import Testing

/// The built `openai-auditd` as a child process, with its own directory for config, state
/// and output. Binaries come from `AUDITD_TEST_BINARY_DIR` (set by `make test`), else
/// `.build/debug` of this package; a missing binary fails the test loudly.
final class DaemonHarness {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let key = "sk-admin-simulator-0000000000000000"

    let directory: String
    let simulator: AuditSimulator
    /// Every daemon started here, killed by `close()` if still running (a failed test must not
    /// leave one behind).
    let launched = Mutex<[Process]>([])
    /// Given to every daemon started here. One slice read at a time unless a test says
    /// otherwise: the crash tests time their kills against a catch-up read page by page, and
    /// four slices at once end it four times sooner (ConcurrentCycleTests, make bench and
    /// `killNineDuringCatchUp...(concurrency: 4)` read four).
    var environment = ["OPENAI_AUDITD_API_MAX_CONCURRENCY": "1"]
    var statePath: String { directory + "/state.json" }
    var stdoutPath: String { directory + "/stdout.jsonl" }
    var stderrPath: String { directory + "/stderr.log" }
    var configPath: String { directory + "/config.yaml" }

    /// With `certificate` and `privateKey` (PEM files) the simulator serves HTTPS.
    init(
        simulator: AuditSimulator = AuditSimulator(adminKey: key, trickyRate: 0.1), certificate: String? = nil,
        privateKey: String? = nil
    ) async throws {
        directory = NSTemporaryDirectory() + "auditd-it-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.simulator = simulator
        try await simulator.start(certificate: certificate, privateKey: privateKey)
    }

    /// Runs `body` with a fresh harness and always cleans it up.
    static func with(
        certificate: String? = nil, privateKey: String? = nil, _ body: (DaemonHarness) async throws -> Void
    ) async throws {
        let harness = try await DaemonHarness(certificate: certificate, privateKey: privateKey)
        do {
            try await body(harness)
        } catch {
            await harness.close()
            throw error
        }
        await harness.close()
    }

    func close() async {
        for process in launched.withLock({ $0 }) where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        try? await simulator.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    static func binary(_ name: String = "openai-auditd") throws -> String {
        let directory = ProcessInfo.processInfo.environment["AUDITD_TEST_BINARY_DIR"] ?? root + "/.build/debug"
        let path = directory + "/" + name
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw HarnessError("\(path) is not built: run 'make build' (or 'swift build') before the integration tests")
        }
        return path
    }

    /// Writes a configuration for the simulator; `extra` is appended under the top level.
    func writeConfig(poll: String = "", api: String = "", extra: String = "") throws {
        let yaml = """
            api:
              base_url: \(simulator.baseURL)
            \(api)
            poll:
            \(poll.isEmpty ? "  interval: 1s" : poll)
            state:
              path: \(statePath)
            \(extra)
            """
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// Starts the daemon (the built one unless `executable` says otherwise); stdout is
    /// appended to `stdoutPath`, stderr to `stderrPath`.
    func launch(
        _ arguments: [String], executable: String? = nil, environment: [String: String] = [:], stdout: Any? = nil
    ) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try executable ?? Self.binary())
        process.arguments = arguments
        var env = ["PATH": "/usr/bin:/bin", "OPENAI_ADMIN_KEY": Self.key, "HOME": directory]
        env.merge(self.environment) { $1 }
        env.merge(environment) { $1 }
        process.environment = env
        for path in [stdoutPath, stderrPath] where !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
        }
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        out.seekToEndOfFile()
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        err.seekToEndOfFile()
        process.standardOutput = stdout ?? out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        launched.withLock { $0.append(process) }
        return process
    }

    /// Runs to completion (or fails the test after `timeout`) and returns the exit status.
    @discardableResult
    func run(
        _ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(120),
        stdout: Any? = nil
    ) async throws -> Int32 {
        let process = try launch(arguments, environment: environment, stdout: stdout)
        return try await Self.wait(process, timeout: timeout)
    }

    /// Runs a command to its end; its exit status and what it printed on stdout.
    func output(_ arguments: [String]) async throws -> (status: Int32, text: String) {
        let path = directory + "/out-\(UUID().uuidString.prefix(8))"
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        let status = try await run(arguments, stdout: handle)
        return (status, try String(contentsOfFile: path, encoding: .utf8))
    }

    static func wait(_ process: Process, timeout: Duration) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline {
                process.interrupt()
                kill(process.processIdentifier, SIGKILL)
                throw HarnessError("openai-auditd \(process.arguments ?? []) did not finish within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }

    /// Polls until `condition` holds or `timeout` passes.
    func waitFor(
        _ what: String, timeout: Duration = .seconds(60), _ condition: () throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while try !condition() {
            guard ContinuousClock.now < deadline else {
                throw HarnessError("timed out waiting for \(what); stderr:\n\(stderr)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The newest 100 organization-scoped events as the simulator serves them, by id: what a
    /// sink's output is compared with.
    func servedEvents() throws -> [String: SimulatedEvent] {
        var query = ListQuery()
        query.limit = 100
        let items = try simulator.store.list(query, now: 1e12).items
        return Dictionary(uniqueKeysWithValues: items.map { ($0.id, $0) })
    }

    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// The ids of `deliveredEvents()`, in the order they arrived.
    func deliveredIDs() throws -> [String] { try deliveredEvents().compactMap { $0["id"] as? String } }

    /// Complete lines of stdout parsed as JSON objects (a line cut by kill -9 is left out).
    func deliveredEvents() throws -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: stdoutPath) else { return [] }
        var events: [[String: Any]] = []
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            if let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] {
                events.append(object)
            }
        }
        return events
    }

    /// Where a fake server of the test (`scripts/fake_http.py`'s `--log`) reports each request.
    var fakeLog: String { directory + "/fake.log" }

    /// The lines in `fakeLog` so far: read from the file, which a test sees at once (the
    /// fake's stdout, read through a pipe, was seen to lag 20 s behind on a loaded machine).
    func fakeLines() -> [String] {
        ((try? String(contentsOfFile: fakeLog, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// How many lines `path` holds now (0 when there is none): cheap enough to poll.
    static func lines(in path: String) -> Int {
        FileManager.default.contents(atPath: path)?.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) } ?? 0
    }

    func lineCount() -> Int { Self.lines(in: stdoutPath) }

    /// `delivered` of a sink's position in the state file (without `sink`: the least of all
    /// sinks), nil while there is none (for polling: records no issue).
    func delivered(sink: String? = nil) -> Int? {
        guard let data = FileManager.default.contents(atPath: statePath),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let sinks = object["sinks"] as? [String: [String: Any]]
        else { return nil }
        let counts = sinks.filter { sink == nil || $0.key == sink }.values.compactMap {
            ($0["delivered"] as? NSNumber)?.intValue
        }
        return counts.min()
    }

    /// One sink's position from the state file.
    func position(_ sink: String) throws -> [String: Any] {
        let sinks = try #require(try state()["sinks"] as? [String: Any], "no sinks in the state file")
        return try #require(sinks[sink] as? [String: Any], "no position for \(sink) in \(sinks.keys.sorted())")
    }

    func state() throws -> [String: Any] {
        let data = try #require(FileManager.default.contents(atPath: statePath), "no state file at \(statePath)")
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension DaemonHarness {
    /// An HTTP request with curl (the metrics endpoint, as a scraper sees it): its status and body.
    static func get(_ url: String, method: String = "GET") throws -> (status: Int, body: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-s", "-X", method, "-w", "\n%{http_code}", "--max-time", "5", url]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        var lines = String(decoding: data, as: UTF8.self).components(separatedBy: "\n")
        let status = Int(lines.removeLast()) ?? 0
        return (status, lines.joined(separator: "\n"))
    }
}

extension Trait where Self == ConditionTrait {
    /// A test that mounts a small tmpfs or installs a package: it needs root, which `make test`
    /// (and CI) has; run otherwise, it is reported as skipped, with this reason.
    static var needsRoot: Self {
        .enabled(if: getuid() == 0, "needs root to mount a tmpfs or install a package (make test runs as root)")
    }
}
