import AuditShipper
import Foundation
import Testing

/// The file sink against a real directory: lines, rotation, truncation, and what it reads
/// back after a crash (the process-level kill -9 and logrotate runs are in IntegrationTests).
@Suite struct FileSinkTests {
    /// Events whose JSON holds every character some format escapes: `"`, `\`, `]`, `=`, `^`,
    /// `|`, a line break and a tab in strings, and non-ASCII.
    static func events(_ range: Range<Int>, at time: Int64 = 1_722_471_046) throws -> [AuditEvent] {
        try range.map { n in
            let json =
                #"{"id":"audit_log-\#(n)","type":"api_key.created","effective_at":\#(time + Int64(n)),"actor":{"type":"session","session":{"user":{"id":"user-1","email":"a\"l]i=c^e|\\@exämple.com"},"ip_address":"203.0.113.7"}},"api_key.created":{"data":{"scopes":["x\ny\tz \\ ^ = ]"]}}}"#
            return try PageScanner.scan(Array(#"{"data":[\#(json)],"has_more":false}"#.utf8)).events[0]
        }
    }

    final class Directory {
        let path = NSTemporaryDirectory() + "file-sink-" + UUID().uuidString
        init() throws { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false) }
        deinit { try? FileManager.default.removeItem(atPath: path) }
        var file: String { path + "/audit.json" }
        var mark: String { path + "/state.json.mark.file" }

        func sink(_ format: EventFormat = .json, fsync: Bool = true, mark: Bool = true) -> FileSink {
            var settings = Configuration.FileSettings(path: file)
            settings.format = format
            settings.fsync = fsync
            return FileSink(settings: settings, markPath: mark ? self.mark : nil, logger: nil)
        }

        func lines(_ path: String? = nil) -> [String] {
            let text = (try? String(contentsOfFile: path ?? file, encoding: .utf8)) ?? ""
            return text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        }

        func append(_ text: String, to path: String? = nil) {
            let handle = FileHandle(forWritingAtPath: path ?? file)!
            handle.seekToEndOfFile()
            handle.write(Data(text.utf8))
            try? handle.close()
        }
    }

    func ids(_ receipts: [Receipt]) -> [String] { receipts.map(\.id) }
    func ids(_ events: [AuditEvent]) -> [String] { events.map(\.id) }

    @Test(arguments: EventFormat.allCases)
    func everyFormatReadsBackTheEventsItWrote(format: EventFormat) async throws {
        let directory = try Directory()
        let events = try Self.events(0..<3)
        let sink = directory.sink(format)
        try await sink.deliver(events)
        let lines = directory.lines()
        #expect(lines.count == 4 && lines.last == "", "one line per event, each ended: \(lines)")
        for (line, event) in zip(lines, events) {
            let receipt = Array(line.utf8).withUnsafeBufferPointer { format.receipt(ofLine: $0) }
            #expect(receipt == Receipt(id: event.id, effectiveAt: event.effectiveAt), "\(format): \(line)")
        }
        // Nothing was recorded yet: a new process reads all three back.
        #expect(ids(try await directory.sink(format).receipts()) == ids(events))
    }

    @Test func linesOfAnotherKindAreNotTakenForEvents() throws {
        let lines = [
            "", "not json", #"{"id":"x"}"#, #"{"id":"x","type":"t","effective_at":1} trailing"#,
            "<134>1 2024-08-01T00:10:46Z host app 1 t [unclosed", "CEF:0|a|b|c|d|e|3|rt=1 cs1=x",
            "LEEF:2.0|a|b|c|d|^|devTime=1^cat=x",
        ]
        for format in EventFormat.allCases {
            for line in lines {
                #expect(
                    Array(line.utf8).withUnsafeBufferPointer { format.receipt(ofLine: $0) } == nil, "\(format): \(line)"
                )
            }
        }
    }

    @Test func afterACrashOnlyTheLinesPastTheMarkAreReadBackAndATornLineIsCut() async throws {
        let directory = try Directory()
        let first = directory.sink()
        try await first.deliver(try Self.events(0..<5))
        try await first.positionRecorded()
        #expect(try await first.receipts().isEmpty, "everything is recorded")
        try await first.deliver(try Self.events(5..<8))
        // kill -9 in the middle of the next line's write
        directory.append(#"{"id":"audit_log-8","type":"api_key.cr"#)
        let second = directory.sink()
        #expect(ids(try await second.receipts()) == ["audit_log-5", "audit_log-6", "audit_log-7"])
        let lines = directory.lines()
        #expect(lines.count == 9 && lines.last == "", "the torn line is gone and the file ends with a line")
        try await second.positionRecorded()
        try await second.deliver(try Self.events(8..<10))
        let after = directory.lines().dropLast()
        #expect(after.count == 10)
        for line in after {
            #expect(Array(line.utf8).withUnsafeBufferPointer { EventFormat.json.receipt(ofLine: $0) } != nil, "\(line)")
        }
    }

    /// Another writer is in the middle of its line (written in two parts, a pause between)
    /// when the sink reads the file back, then appends more: its line is not cut as torn,
    /// whether or not it looks like one of ours, and no line of its is lost. On 0ffbb0c the
    /// first part was cut and the line left broken.
    @Test(arguments: [("agent marker ", "written in two parts"), (#"{"marker":"#, #""json"}"#)])
    func aConcurrentWriterLosesNoLine(first: String, second: String) async throws {
        let directory = try Directory()
        let sink = directory.sink()
        try await sink.deliver(try Self.events(0..<3))
        try await sink.positionRecorded()
        let file = directory.file
        let started = Locked(false)
        let writer = Thread {
            let fd = open(file, O_WRONLY | O_APPEND)
            defer { close(fd) }
            func put(_ text: String) { _ = Array(text.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }
            put(first)
            started.withLock { $0 = true }
            usleep(100_000)
            put(second + "\n")
            // One write() per whole line (O_APPEND), as `echo >>` does.
            for n in 0..<20 { put("marker \(n)\n") }
        }
        writer.start()
        while !started.withLock({ $0 }) { usleep(1000) }
        let receipts = try await directory.sink().receipts()
        while !writer.isFinished { usleep(1000) }
        #expect(receipts.isEmpty)
        let lines = directory.lines()
        #expect(lines.count == 25, "three events, the line, 20 markers, the end: \(lines)")
        #expect(lines.contains(first + second), "the other writer's line is whole")
        for n in 0..<20 { #expect(lines.contains("marker \(n)")) }
    }

    /// `fdatasync` fails (an I/O error): the lines are in the page cache, which a read-back
    /// would count as delivered, but maybe never on the disk. They are taken off again; when
    /// another writer appended after them, they stay but are not read back as delivered, so
    /// the batch is sent again rather than lost.
    @Test(arguments: [false, true])
    func linesThatCouldNotBeSyncedDoNotCountAsDelivered(anotherWriterAppended: Bool) async throws {
        let directory = try Directory()
        let failing = Locked(false)
        let file = directory.file
        var settings = Configuration.FileSettings(path: file)
        settings.fsync = true
        let sink = FileSink(
            settings: settings, markPath: directory.mark, logger: nil,
            sync: { fd in
                guard failing.withLock({ $0 }) else { return fdatasync(fd) }
                if anotherWriterAppended {
                    let other = open(file, O_WRONLY | O_APPEND)
                    _ = Array("agent marker\n".utf8).withUnsafeBytes { write(other, $0.baseAddress, $0.count) }
                    close(other)
                }
                errno = EIO
                return -1
            })
        try await sink.deliver(try Self.events(0..<2))
        try await sink.positionRecorded()
        failing.withLock { $0 = true }
        await #expect {
            try await sink.deliver(try Self.events(2..<5))
        } throws: { error in
            "\(error)".contains("cannot fsync") && "\(error)".contains("Input/output error")
        }
        failing.withLock { $0 = false }
        #expect(try await sink.receipts().isEmpty, "nothing unsynced counts as delivered")
        let lines = directory.lines()
        // Two events and the end; with the other writer, the three unsynced lines and its own too.
        let expected = anotherWriterAppended ? 7 : 3
        #expect(lines.count == expected, "\(lines.count) lines")
        // The cycle sends the batch again; it is synced this time and reads back as delivered.
        try await sink.deliver(try Self.events(2..<5))
        #expect(ids(try await sink.receipts()).suffix(3) == ["audit_log-2", "audit_log-3", "audit_log-4"])
    }

    /// A last line that is not this sink's (an agent's marker written without its newline) is
    /// ended with a newline, never cut; one of ours that stays as it is, is cut.
    @Test func onlyATornLineOfOursIsCut() async throws {
        let directory = try Directory()
        let sink = directory.sink()
        try await sink.deliver(try Self.events(0..<2))
        try await sink.positionRecorded()
        directory.append("agent marker without a newline")
        #expect(try await directory.sink().receipts().isEmpty)
        #expect(directory.lines().suffix(2) == ["agent marker without a newline", ""], "ended, not cut")
        directory.append(#"{"id":"audit_log-2","type":"api_"#)
        #expect(try await directory.sink().receipts().isEmpty)
        #expect(directory.lines().suffix(2) == ["agent marker without a newline", ""], "ours, cut")
    }

    /// `replay` beside the service: another openai-auditd holds the file's lock while it
    /// writes a batch. The read-back waits for it, so a line in the middle of being written is
    /// seen whole, not cut as torn.
    @Test func theReadBackWaitsForAnotherOpenaiAuditdsWrite() async throws {
        let directory = try Directory()
        let sink = directory.sink()
        try await sink.deliver(try Self.events(0..<2))
        try await sink.positionRecorded()
        var line: [UInt8] = []
        EventFormat.json.append(try Self.events(2..<3)[0], origin: SyslogOrigin(), to: &line)
        line.append(0x0A)
        let whole = line
        let file = directory.file
        let locked = Locked(false)
        // The other process, on a thread of its own (not the test's pool, which the read-back
        // below blocks while it waits for the lock).
        let replay = Thread {
            let fd = open(file, O_WRONLY | O_APPEND)
            defer { close(fd) }
            _ = flock(fd, LOCK_EX)
            let half = whole.count / 2
            _ = whole.withUnsafeBytes { write(fd, $0.baseAddress, half) }
            locked.withLock { $0 = true }
            usleep(300_000)
            _ = whole.withUnsafeBytes { write(fd, $0.baseAddress! + half, whole.count - half) }
            _ = flock(fd, LOCK_UN)
        }
        replay.start()
        while !locked.withLock({ $0 }) { usleep(1000) }
        let receipts = try await directory.sink().receipts()
        while !replay.isFinished { usleep(1000) }
        #expect(ids(receipts) == ["audit_log-2"], "the line was waited for, whole")
        #expect(directory.lines().count == 4)
    }

    @Test func aRenamedFileIsNeverWrittenAgainAndANewOneGetsTheMode() async throws {
        let directory = try Directory()
        let sink = directory.sink()
        let old = umask(0o077)
        defer { umask(old) }
        try await sink.deliver(try Self.events(0..<2))
        #expect(rename(directory.file, directory.file + ".1") == 0)
        try await sink.deliver(try Self.events(2..<4))
        #expect(directory.lines(directory.file + ".1").count == 3)
        #expect(directory.lines().count == 3 && directory.lines()[0].contains("audit_log-2"))
        let mode = try FileManager.default.attributesOfItem(atPath: directory.file)[.posixPermissions] as? Int
        #expect(mode == 0o640, "0640 whatever the umask")
        // Removed outright: a new file again.
        #expect(unlink(directory.file) == 0)
        try await sink.deliver(try Self.events(4..<5))
        #expect(directory.lines().count == 2)
    }

    @Test func aTruncatedFileIsWrittenFromItsNewEnd() async throws {
        let directory = try Directory()
        let sink = directory.sink()
        try await sink.deliver(try Self.events(0..<3))
        #expect(truncate(directory.file, 0) == 0)
        try await sink.deliver(try Self.events(3..<4))
        let data = try #require(FileManager.default.contents(atPath: directory.file))
        #expect(!data.contains(0), "no hole of zeros where the old lines were")
        #expect(directory.lines().count == 2 && directory.lines()[0].contains("audit_log-3"))
        // Read back after a crash: shorter than the mark, so all of it is new.
        try await sink.positionRecorded()
        #expect(truncate(directory.file, 0) == 0)
        try await sink.deliver(try Self.events(4..<5))
        #expect(ids(try await directory.sink().receipts()) == ["audit_log-4"])
    }

    @Test func theMarkIsFollowedIntoTheRotatedFileAndTheNewOne() async throws {
        let directory = try Directory()
        let first = directory.sink()
        try await first.deliver(try Self.events(0..<4))
        try await first.positionRecorded()
        try await first.deliver(try Self.events(4..<6))
        #expect(rename(directory.file, directory.file + ".1") == 0)
        try await first.deliver(try Self.events(6..<7))
        // A crash here: 4 and 5 are in audit.json.1 past the mark, 6 in the new audit.json.
        #expect(ids(try await directory.sink().receipts()) == ["audit_log-4", "audit_log-5", "audit_log-6"])
        // Recorded in the new file: nothing is left to read back.
        try await first.positionRecorded()
        #expect(try await directory.sink().receipts().isEmpty)
    }

    /// A file that carries the mark's inode but not its bytes (the inode freed by rotation and
    /// taken by `audit.json.1.gz`) is not the rotated file: it is never read back nor cut, and
    /// the sink does not fail on it. (It cut the compressed file's tail: gzip -t failed.)
    @Test func aFileWithTheMarksInodeButOtherBytesIsLeftAlone() async throws {
        let directory = try Directory()
        let first = directory.sink()
        try await first.deliver(try Self.events(0..<4))
        try await first.positionRecorded()
        let compressed = directory.file + ".1.gz"
        #expect(rename(directory.file, compressed) == 0)
        // Other bytes in place (the same inode), with no newline at the end.
        let bytes = Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }.map { $0 == 0x0A ? 0x0B : $0 })
        let handle = try #require(FileHandle(forUpdatingAtPath: compressed))
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: bytes)
        try handle.close()
        try await first.deliver(try Self.events(4..<6))
        #expect(ids(try await directory.sink().receipts()) == ["audit_log-4", "audit_log-5"])
        #expect(FileManager.default.contents(atPath: compressed) == bytes, "the compressed file is untouched")
    }

    @Test func withoutAMarkTheEndOfTheFileIsReadBack() async throws {
        let directory = try Directory()
        try await directory.sink(mark: false).deliver(try Self.events(0..<3))
        #expect(!FileManager.default.fileExists(atPath: directory.mark))
        #expect(ids(try await directory.sink().receipts()) == ["audit_log-0", "audit_log-1", "audit_log-2"])
    }

    @Test func aMissingDirectoryALinkAndADirectoryAreNamed() async throws {
        let directory = try Directory()
        var settings = Configuration.FileSettings(path: directory.path + "/missing/audit.json")
        await #expect {
            try await FileSink(settings: settings, markPath: nil, logger: nil).check()
        } throws: { error in
            "\(error)".contains("the directory \(directory.path)/missing does not exist")
        }
        #expect(symlink("/etc/passwd", directory.file) == 0)
        settings.path = directory.file
        await #expect {
            try await FileSink(settings: settings, markPath: nil, logger: nil).deliver(try Self.events(0..<1))
        } throws: { error in
            "\(error)".contains("is a symbolic link, which the file sink does not follow")
        }
        settings.path = directory.path
        await #expect {
            try await FileSink(settings: settings, markPath: nil, logger: nil).check()
        } throws: { error in
            "\(error)".contains("is a directory")
        }
    }
}
