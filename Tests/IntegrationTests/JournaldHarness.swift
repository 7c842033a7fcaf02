import Foundation
import Testing

/// A real `systemd-journald` for the tests, private to the test run.
///
/// `make test` runs the tests in a mount namespace (scripts/test-namespace.sh) where the
/// journal's socket directory is a tmpfs and its storage is `AUDITD_TEST_JOURNAL_DIR`.
/// Outside that namespace these tests fail with a message saying so: starting journald there
/// would take over the host's journal socket.
actor JournaldHarness {
    static let shared = JournaldHarness()
    static let binary = "/lib/systemd/systemd-journald"
    static let socket = "/run/systemd/journal/socket"

    var process: Process?

    static func directory() throws -> String {
        guard let directory = ProcessInfo.processInfo.environment["AUDITD_TEST_JOURNAL_DIR"] else {
            throw HarnessError(
                "journald tests need the private journal namespace: run them with 'make test' (scripts/run-tests.sh)")
        }
        return directory
    }

    /// Starts journald unless it runs; waits for its socket to accept.
    func start() async throws {
        _ = try Self.directory()
        if let process, process.isRunning { return }
        try? FileManager.default.removeItem(atPath: Self.socket)
        let journald = Process()
        journald.executableURL = URL(fileURLWithPath: Self.binary)
        journald.arguments = []  // any argument would be taken as a namespace name
        journald.standardOutput = FileHandle.nullDevice
        journald.standardError = FileHandle.nullDevice
        try journald.run()
        process = journald
        for _ in 0..<500 {
            if FileManager.default.fileExists(atPath: Self.socket) { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw HarnessError("systemd-journald did not create \(Self.socket) within 5 s")
    }

    /// Stops journald (SIGTERM); its socket file stays behind, as after a crash or a stop.
    func stop() async throws {
        guard let process, process.isRunning else { return }
        process.terminate()
        for _ in 0..<500 where process.isRunning { try await Task.sleep(for: .milliseconds(10)) }
        self.process = nil
    }

    /// Sends `signal` to the journald this harness started (SIGSTOP to make it stop reading).
    func signal(_ signal: Int32) throws {
        guard let process, process.isRunning else { throw HarnessError("systemd-journald is not running") }
        kill(process.processIdentifier, signal)
    }

    /// Entries matching `matches` (`FIELD=value`), as JSON objects, after a sync.
    nonisolated func entries(_ matches: [String]) async throws -> [[String: Any]] {
        try await start()
        return try Self.read(matches)
    }

    /// Entries matching `matches`, after a sync, from a journald already running (usable
    /// inside a synchronous wait condition).
    static func read(_ matches: [String]) throws -> [[String: Any]] {
        _ = try journalctl(["--sync"])
        let output = try journalctl(["-D", try directory(), "--all", "-o", "json", "--no-pager"] + matches)
        return output.split(separator: UInt8(ascii: "\n")).compactMap {
            try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any]
        }
    }

    static func journalctl(_ arguments: [String]) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/journalctl")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return data
    }

    /// A journal value as text: journalctl prints non-printable values as byte arrays.
    static func text(_ value: Any?) -> String? {
        if let text = value as? String { return text }
        if let bytes = value as? [NSNumber] { return String(decoding: bytes.map { $0.uint8Value }, as: UTF8.self) }
        return nil
    }
}
