import AuditShipper
import Foundation
import Testing

@Suite struct StateStoreTests {
    static let source = StateSource(
        baseURL: "https://api.openai.com/v1", organization: "org-1",
        filters: AuditLogFilters(eventTypes: ["login.failed"]))

    func withStore(_ body: (StateStore, String) throws -> Void) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/state.json"
        try body(try StateStore(path: path), path)
    }

    @Test func aMissingFileIsAFirstRun() throws {
        try withStore { store, _ in
            let state = try store.load()
            #expect(state == nil)
        }
    }

    @Test func aSavedStateReadsBackTheSame() throws {
        try withStore { store, path in
            var state = AuditState(source: Self.source, startAt: 100, now: 200)
            state.completeBefore = 150
            state.recent = ["audit_log-a": 149, "audit_log-b": 150, "odd \"id\" \\ \n é": 150]
            state.delivered = 2
            try store.save(state)
            #expect(try store.load() == state)
            let text = try String(contentsOfFile: path, encoding: .utf8)
            #expect(text.contains(#""version":1"#))
            #expect(text.contains(#""complete_before":150"#))
            #expect(!FileManager.default.fileExists(atPath: path + ".tmp"), "the temporary file was renamed")
            let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            #expect(mode == 0o600)
        }
    }

    @Test(arguments: [
        ("", "is corrupt (the file is empty)"),
        ("{not json", "is corrupt (not a JSON object)"),
        ("[1,2]", "is corrupt (not a JSON object)"),
        (#"{"complete_before": 1}"#, #"is corrupt (no "version")"#),
        (#"{"version": 2}"#, "has version 2, this openai-auditd reads version 1"),
        (#"{"version": 1, "start_at": 0}"#, "is corrupt (missing"),
        (
            #"{"version":1,"source":{"base_url":"x","filters":{}},"start_at":0,"complete_before":"soon","recent":{},"delivered":0,"updated_at":0}"#,
            #"is corrupt (wrong type at "complete_before")"#
        ),
    ])
    func aCorruptFileStopsWithItsNameAndTheWayOut(content: String, reason: String) throws {
        try withStore { store, path in
            try content.write(toFile: path, atomically: true, encoding: .utf8)
            #expect {
                try store.load()
            } throws: { error in
                guard let error = error as? StateError, error.exitCode == 65 else { return false }
                let text = "\(error)"
                return text.contains(path) && text.contains(reason) && text.contains("openai-auditd state reset")
            }
            #expect(try String(contentsOfFile: path, encoding: .utf8) == content, "never reset silently")
        }
    }

    @Test func aSecondStoreOnTheSameFileIsRefused() throws {
        try withStore { _, path in
            #expect {
                try StateStore(path: path)
            } throws: { error in
                guard let error = error as? StateError, case .locked = error else { return false }
                return "\(error)".contains("in use by another openai-auditd (pid \(getpid())") && error.exitCode == 73
            }
            #expect(throws: Never.self) { try StateStore(path: path, lock: false) }
        }
    }

    @Test func theLockIsReleasedWithTheStore() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/state.json"
        do { _ = try StateStore(path: path) }
        #expect(throws: Never.self) { try StateStore(path: path) }
    }

    @Test func aLeftoverTemporaryFileDoesNotMatter() throws {
        try withStore { store, path in
            let state = AuditState(source: Self.source, startAt: 1, now: 1)
            try store.save(state)
            try "torn half-writ".write(toFile: path + ".tmp", atomically: false, encoding: .utf8)
            #expect(try store.load() == state)
            try store.save(state)
            #expect(try store.load() == state)
        }
    }

    @Test func anUnwritableDirectoryFailsTheSaveAndKeepsTheOldFile() throws {
        try withStore { store, path in
            let state = AuditState(source: Self.source, startAt: 1, now: 1)
            try store.save(state)
            // A directory where the temporary file should go makes the write fail, as a full disk would.
            try FileManager.default.createDirectory(atPath: path + ".tmp", withIntermediateDirectories: false)
            var next = state
            next.completeBefore = 99
            #expect {
                try store.save(next)
            } throws: { error in
                (error as? StateError)?.exitCode == 73 && "\(error)".contains("cannot write state file \(path)")
            }
            #expect(try store.load() == state)
        }
    }

    /// `state reset` run by root on a service's DynamicUser state directory: what root
    /// writes there must stay the service's, or the next start cannot read its own state.
    @Test func rootWritingAnotherUsersStateLeavesItToThatUser() throws {
        guard getuid() == 0 else {
            Issue.record("this test changes file owners and needs root (make test runs as root in CI)")
            return
        }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let service: uid_t = 61_234
        #expect(chown(directory.path, service, service) == 0)
        let path = directory.path + "/state.json"
        let store = try StateStore(path: path)
        try store.save(AuditState(source: Self.source, startAt: 1, now: 1))
        for file in [path, path + ".lock"] {
            let attributes = try FileManager.default.attributesOfItem(atPath: file)
            #expect((attributes[.ownerAccountID] as? NSNumber)?.uint32Value == service, "\(file)")
            #expect((attributes[.groupOwnerAccountID] as? NSNumber)?.uint32Value == service, "\(file)")
        }
        #expect(try store.setAside(now: 5) == path + ".before-reset-5")
    }

    @Test func theStateDirectoryIsCreated() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try StateStore(path: directory.path + "/a/b/state.json")
        try store.save(AuditState(source: Self.source, startAt: 1, now: 1))
        #expect(try store.load() != nil)
    }

    @Test func windowStartAndPruning() {
        var state = AuditState(source: Self.source, startAt: 1000, now: 0)
        #expect(state.windowStart(lookback: 600) == 1000, "never before start_at")
        state.completeBefore = 5000
        #expect(state.windowStart(lookback: 600) == 4400)
        state.recent = ["old": 4399, "edge": 4400, "new": 4999]
        state.pruneRecent(lookback: 600)
        #expect(Set(state.recent.keys) == ["edge", "new"])
    }
}
