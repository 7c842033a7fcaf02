import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One event per line in a file that a SIEM agent tails; reopened after logrotate; exactly
/// once after `kill -9`, because the file itself says what it holds.
///
/// Rotation: before each batch the path is checked against the file held open (device and
/// inode). Renamed or removed (logrotate's `create`), a new file is opened: nothing is written
/// into a file after it was rotated away (unless the rename lands mid-batch). Truncated
/// (`copytruncate`), writing goes on at the new end (`O_APPEND`). A reload (SIGHUP) builds a
/// new sink, which opens the path anew.
///
/// Exactly once: `positionRecorded` writes a `FileMark` (the file, its size and a checksum of
/// its last line) once the state holds everything before it. `receipts` reads back only what was written after the
/// mark, in that file (found by inode even when rotated) and in the file now at the path,
/// and names the events there; the cycle holds them as delivered. A torn last line (a crash
/// or a full disk mid-write) is cut there before anything is appended, so every line parses.
///
/// Other writers: `replay` run beside the service appends with this same type, and an agent
/// may append a marker of its own. Writes and the read-back that may cut a torn line take an
/// exclusive `flock` on the file, so two openai-auditd processes never cut each other's
/// lines; and a torn line is cut only when it looks like a line of this sink's and the file
/// did not grow while it was looked at (a writer of another kind, which takes no lock, may be
/// in the middle of its line): else it is ended with a newline, which loses no one's bytes.
public final class FileSink: Sink {
    /// The most of a file read back when it has no mark to start from (a first run beside an
    /// existing file). From a mark, everything after it is read, in chunks: that is what may
    /// be unrecorded, however large one batch's events were.
    static let readBackLimit = 64 << 20
    /// How long a last line without its newline must stay as it is before it counts as torn.
    static let tornLineSettle: Duration = .milliseconds(200)

    public let name: String
    public let path: String
    public let format: EventFormat
    /// JSON lines carry what the detection rules found (`annotate: true`).
    let annotate: Bool
    let origin: SyslogOrigin
    let mode: mode_t
    let group: gid_t?
    let fsync: Bool
    /// `fdatasync`, or a failing one in tests (an I/O error cannot be had on demand).
    let sync: @Sendable (Int32) -> Int32
    /// nil where nothing may be recorded (`replay`): the file is only appended to, and what
    /// it holds is not read back as delivered.
    let markPath: String?
    let logger: Logger?
    let state = Mutex(OpenFile())

    /// The file the sink has open, its mark, and what it knows of them.
    struct OpenFile {
        var fd: Int32 = -1
        var device: UInt64 = 0
        var inode: UInt64 = 0
        var markFD: Int32 = -1
        /// The mark last written or read; nil until then.
        var mark: FileMark?
        var markRead = false
        /// Another process held a lock on the file past the wait: said once, not waited for
        /// again until the lock is had.
        var lockHeldElsewhere = false
        /// Lines in this range of the file with this inode were written but not synced
        /// (`fdatasync` failed) and could not be taken off: not delivered, whatever reads back.
        var unsynced: (inode: UInt64, lines: Range<Int64>)?

        mutating func closeFiles() {
            if fd >= 0 { Glibc.close(fd) }
            if markFD >= 0 { Glibc.close(markFD) }
            fd = -1
            markFD = -1
        }
    }

    public init(
        settings: Configuration.FileSettings, name: String? = nil, markPath: String?, logger: Logger?,
        origin: SyslogOrigin = SyslogOrigin(), sync: @escaping @Sendable (Int32) -> Int32 = { fdatasync($0) }
    ) {
        self.sync = sync
        self.name = name ?? Configuration.SinkSettings.file(settings).defaultName
        path = settings.path
        format = settings.format
        annotate = settings.annotate
        mode = mode_t(settings.mode)
        group = settings.group.map { gid_t($0.id) }
        fsync = settings.fsync
        self.markPath = markPath
        self.logger = logger
        self.origin = origin
    }

    deinit {
        state.withLock { $0.closeFiles() }
    }

    public func close() async {
        state.withLock { $0.closeFiles() }
    }

    public func check() async throws {
        try state.withLock { opened throws(SinkError) in try open(&opened) }
    }

    public func deliver(_ batch: [AuditEvent]) async throws {
        let buffer = format.lines(batch, origin: origin, annotated: annotate)
        try state.withLock { opened throws(SinkError) in
            try open(&opened)
            let locked = lock(opened.fd, &opened)
            defer { if locked { flock(opened.fd, LOCK_UN) } }
            try write(buffer, to: opened.fd, locked: locked)
            if fsync, sync(opened.fd) != 0 {
                let reason = POSIX.errnoText()
                // The lines are in the page cache, which reads them back, but not on the disk
                // (after an I/O error the kernel may drop them): they must not count as
                // delivered. Taken off again while the file ends with them; else (another
                // writer appended since) not read back as delivered by this process.
                let end = Int64(lseek(opened.fd, 0, SEEK_CUR))
                let start = end - Int64(buffer.count)
                if !takeBack(buffer.count, from: opened.fd, locked: locked) {
                    let earlier =
                        opened.unsynced.flatMap { $0.inode == opened.inode ? $0.lines : nil } ?? start..<Int64(end)
                    opened.unsynced = (
                        opened.inode, min(earlier.lowerBound, start)..<max(earlier.upperBound, Int64(end))
                    )
                }
                throw SinkError.writeFailed(
                    sink: name, reason: "cannot fsync \(path): \(reason); its lines of the batch are sent again")
            }
        }
    }

    public func receipts() async throws -> [Receipt] {
        try state.withLock { opened throws(SinkError) in
            if !opened.markRead {
                opened.mark = readMark()
                opened.markRead = true
            }
            var current = stat()
            let present = lstat(path, &current) == 0 && current.st_mode & S_IFMT == S_IFREG
            var receipts: [Receipt] = []
            if let mark = opened.mark, present, mark.names(current) {
                // Truncated since (copytruncate), by its size or by the bytes before the mark
                // no longer being those it saw: all of it is new.
                let matches = mark.matches(path)
                receipts += try readBack(path, from: matches ? mark.offset : 0, bounded: !matches, &opened)
            } else {
                // A rotated file is no longer the sink's to change: read, never cut.
                if let mark = opened.mark, let rotated = rotatedFile(mark) {
                    receipts += try readBack(rotated, from: mark.offset, bounded: false, cutsTornLine: false, &opened)
                }
                if present { receipts += try readBack(path, from: 0, bounded: true, &opened) }
            }
            // Nothing of ours past where it read: later cycles of this process start there (a
            // file without a mark, of foreign lines only, is not read again at every poll).
            if receipts.isEmpty, present {
                let fd = Glibc.open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
                if fd >= 0 {
                    var info = stat()
                    if fstat(fd, &info) == 0 {
                        opened.mark = FileMark(
                            fd, device: UInt64(info.st_dev), inode: UInt64(info.st_ino), offset: Int64(info.st_size))
                    }
                    Glibc.close(fd)
                }
            }
            // Without a state (`replay`) the events are sent again on purpose; the torn line
            // is cut all the same.
            return markPath == nil ? [] : receipts
        }
    }

    public func positionRecorded() async throws {
        guard let markPath else { return }
        try state.withLock { opened throws(SinkError) in
            try open(&opened)
            var info = stat()
            guard fstat(opened.fd, &info) == 0 else {
                throw SinkError.writeFailed(sink: name, reason: "cannot stat \(path): \(POSIX.errnoText())")
            }
            let mark = FileMark(opened.fd, device: opened.device, inode: opened.inode, offset: Int64(info.st_size))
            guard mark != opened.mark else { return }
            if opened.markFD < 0 {
                let owner = POSIX.foreignOwner(of: (markPath as NSString).deletingLastPathComponent)
                switch POSIX.openRegular(markPath, O_WRONLY | O_CREAT, mode: 0o600, owner: owner) {
                case .success(let fd): opened.markFD = fd
                case .failure(.symbolicLink):
                    throw SinkError.writeFailed(
                        sink: name,
                        reason: "the file sink's mark \(markPath) is a symbolic link, which is never followed")
                case .failure(.notRegular):
                    throw SinkError.writeFailed(
                        sink: name, reason: "the file sink's mark \(markPath) is not a regular file")
                case .failure(.missing):
                    throw SinkError.writeFailed(
                        sink: name, reason: "cannot create \(markPath): \(POSIX.errnoText(ENOENT))")
                case .failure(.failed(let reason)):
                    throw SinkError.writeFailed(sink: name, reason: "cannot open \(markPath): \(reason)")
                }
            }
            let line = mark.line
            let written = line.withUnsafeBytes { pwrite(opened.markFD, $0.baseAddress, $0.count, 0) }
            guard written == line.count else {
                throw SinkError.writeFailed(
                    sink: name, reason: "cannot write \(markPath): \(POSIX.errnoText())")
            }
            opened.mark = mark
        }
    }

    // MARK: the file

    /// Makes `held.fd` the file now at `path`: the one held if the path still names it,
    /// else a new one (created with `mode` and `group`, its directory fsynced).
    func open(_ opened: inout OpenFile) throws(SinkError) {
        var info = stat()
        if opened.fd >= 0 {
            if lstat(path, &info) == 0, UInt64(info.st_dev) == opened.device, UInt64(info.st_ino) == opened.inode {
                return
            }
            // Renamed or removed (rotated), or replaced: never written into again.
            Glibc.close(opened.fd)
            opened.fd = -1
            logger?.notice(
                "the file was rotated, writing to a new one", metadata: ["sink": "\(name)", "path": "\(path)"])
        }
        var created = true
        // Read too: the mark checks the bytes before it (`FileMark.tail`).
        var fd = Glibc.open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        if fd < 0, errno == EEXIST {
            created = false
            fd = Glibc.open(path, O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC)
        }
        guard fd >= 0 else { throw SinkError.closed(sink: name, reason: cannotOpen(errno)) }
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            Glibc.close(fd)
            throw SinkError.closed(sink: name, reason: "\(path) is not a regular file")
        }
        if created {
            // The service's umask (0077) would leave the agent out: the mode is set, not masked.
            _ = fchmod(fd, mode)
        }
        if let group, info.st_gid != group, fchown(fd, uid_t.max, group) != 0 {
            let reason = POSIX.errnoText()
            Glibc.close(fd)
            throw SinkError.closed(
                sink: name,
                reason:
                    "cannot give \(path) to group \(group): \(reason) (the daemon must run as root or be a member of that group)"
            )
        }
        if created, fsync {
            let directory = Glibc.open(directoryPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if directory >= 0 {
                _ = Glibc.fsync(directory)
                Glibc.close(directory)
            }
        }
        opened.fd = fd
        opened.device = UInt64(info.st_dev)
        opened.inode = UInt64(info.st_ino)
    }

    var directoryPath: String {
        let directory = (path as NSString).deletingLastPathComponent
        return directory.isEmpty ? "/" : directory
    }

    /// Why the path cannot be opened, in an operator's words.
    func cannotOpen(_ code: Int32) -> String {
        switch code {
        case ENOENT:
            return "cannot create \(path): the directory \(directoryPath) does not exist"
        case EACCES, EPERM, EROFS:
            return
                "cannot write \(path): \(POSIX.errnoText(code)) (the daemon needs write access to \(directoryPath); the packaged units give it /var/log/openai-auditd)"
        case ELOOP:
            return "\(path) is a symbolic link, which the file sink does not follow: give the real path"
        case EISDIR:
            return "\(path) is a directory: give the path of a file in it"
        default:
            return "cannot open \(path): \(POSIX.errnoText(code))"
        }
    }

    /// Writes every byte. On a failure (a full disk) the complete lines written stay (the next
    /// cycle reads them back) and a line cut short is taken off again, so the file never ends
    /// in half a line that the next batch would run on from: only while the file ends where
    /// this write ended (the descriptor's offset, `O_APPEND`), so nothing another writer
    /// appended since is cut. Otherwise the next read-back deals with the half line.
    func write(_ bytes: [UInt8], to fd: Int32, locked: Bool) throws(SinkError) {
        let (written, code) = POSIX.writeAll(bytes, to: fd)
        guard let code else { return }
        let failure = POSIX.errnoText(code)
        let complete = bytes[..<written].lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
        if written > complete { _ = takeBack(written - complete, from: fd, locked: locked) }
        throw SinkError.writeFailed(sink: name, reason: "cannot write \(path): \(failure)")
    }

    /// Takes the last `count` bytes this process wrote back off the file, only while it holds
    /// the lock and the file still ends where its write ended (the descriptor's offset, with
    /// `O_APPEND`): whatever another writer appended since is never cut. True if they are off.
    func takeBack(_ count: Int, from fd: Int32, locked: Bool) -> Bool {
        var info = stat()
        let end = lseek(fd, 0, SEEK_CUR)
        guard locked, end >= count, fstat(fd, &info) == 0, info.st_size == end else { return false }
        return ftruncate(fd, end - off_t(count)) == 0
    }

    /// An exclusive `flock` on `fd`, waited for up to ten seconds: every openai-auditd writing
    /// the file takes it, for one batch at a time. Past that (a process that holds its own lock
    /// on the file for long), the sink goes on without, as a writer that takes none would, says
    /// so once, and does not wait again until it gets the lock.
    func lock(_ fd: Int32, _ opened: inout OpenFile) -> Bool {
        let deadline = ContinuousClock.now + (opened.lockHeldElsewhere ? .zero : .seconds(10))
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR, ContinuousClock.now < deadline else {
                if !opened.lockHeldElsewhere {
                    opened.lockHeldElsewhere = true
                    logger?.warning(
                        "another process holds a lock on the file; writing without it (a torn last line is then ended, not cut)",
                        metadata: ["sink": "\(name)", "path": "\(path)"])
                }
                return false
            }
            usleep(10_000)
        }
        opened.lockHeldElsewhere = false
        return true
    }

    // MARK: reading back

    func readMark() -> FileMark? {
        guard let markPath, case .success(let bytes) = POSIX.readRegular(markPath) else { return nil }
        return FileMark(line: bytes)
    }

    /// The file the mark names when it is no longer at the path: renamed beside it by logrotate
    /// (`audit.json.1`). Compressed or removed, it is gone, and so is what it held.
    func rotatedFile(_ mark: FileMark) -> String? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directoryPath)) ?? []
        for name in names.sorted() {
            let candidate = directoryPath == "/" ? "/\(name)" : "\(directoryPath)/\(name)"
            var info = stat()
            // The inode alone is not enough: rotation and compression free it, and the
            // compressed file (`audit.json.1.gz`) may get it. The bytes before the mark must be
            // the ones it saw.
            if candidate != path, lstat(candidate, &info) == 0, info.st_mode & S_IFMT == S_IFREG, mark.names(info),
                mark.matches(candidate)
            {
                return candidate
            }
        }
        return nil
    }

    /// The events in `file` from byte `from` on (`bounded`: at most its last `readBackLimit`
    /// bytes, from the first whole line there), read a chunk at a time so that memory is one
    /// chunk and one line whatever the region holds. A last line without its newline is
    /// ended (`endTornLine`) when `cutsTornLine` (the live file only: a rotated one is opened
    /// read-only and left as it is).
    func readBack(
        _ file: String, from: Int64, bounded: Bool, cutsTornLine: Bool = true, _ opened: inout OpenFile
    ) throws(SinkError) -> [Receipt] {
        let fd = Glibc.open(file, (cutsTornLine ? O_RDWR | O_APPEND : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return [] }
            throw SinkError.closed(sink: name, reason: "cannot read back \(file): \(POSIX.errnoText())")
        }
        // Taken before the size is read: a `replay` beside the service writes its batch whole
        // before or after this, never while a torn line is looked at.
        let locked = cutsTornLine && lock(fd, &opened)
        defer {
            if locked { flock(fd, LOCK_UN) }
            Glibc.close(fd)
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw SinkError.closed(sink: name, reason: "cannot read back \(file): \(POSIX.errnoText())")
        }
        let size = Int64(info.st_size)
        var start = min(from, size)
        // Cut to the limit, the region no longer begins at a line: it starts after the first.
        var skipping = false
        if bounded, size - start > Int64(Self.readBackLimit) {
            start = size - Int64(Self.readBackLimit)
            skipping = true
        }
        var receipts: [Receipt] = []
        var foreign = 0
        // What this process wrote but could not sync is in the page cache only.
        let unsynced = opened.unsynced.flatMap { UInt64(info.st_ino) == $0.inode ? $0.lines : nil } ?? 0..<0
        var lineStart = start
        func take(_ line: UnsafeBufferPointer<UInt8>) {
            if let receipt = format.receipt(ofLine: line) {
                if !unsynced.contains(lineStart) { receipts.append(receipt) }
            } else if !line.isEmpty {
                foreign += 1
            }
        }
        // The start of a line not yet ended, carried from one chunk to the next.
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var offset = start
        while offset < size {
            let n = POSIX.retrying {
                chunk.withUnsafeMutableBytes {
                    pread(fd, $0.baseAddress!, min($0.count, Int(size - offset)), off_t(offset))
                }
            }
            guard n > 0 else {
                throw SinkError.closed(sink: name, reason: "cannot read back \(file): \(POSIX.errnoText())")
            }
            chunk.withUnsafeBufferPointer { buffer in
                var i = 0
                while let newline = buffer[i..<n].firstIndex(of: 0x0A) {
                    if skipping {
                        skipping = false
                    } else if pending.isEmpty {
                        take(UnsafeBufferPointer(rebasing: buffer[i..<newline]))
                    } else {
                        pending.append(contentsOf: buffer[i..<newline])
                        pending.withUnsafeBufferPointer { take($0) }
                    }
                    pending.removeAll(keepingCapacity: false)
                    i = newline + 1
                    lineStart = offset + Int64(i)
                }
                if !skipping { pending.append(contentsOf: buffer[i..<n]) }
            }
            offset += Int64(n)
        }
        if foreign > 0 {
            logger?.warning(
                "lines in the file that are not \(format.rawValue) events of this sink; left as they are",
                metadata: ["sink": "\(name)", "path": "\(file)", "lines": "\(foreign)"])
        }
        if !skipping, lineStart < size, cutsTornLine {
            try endTornLine(fd, file, at: lineStart, size: size, ours: format.mayBeginLine(pending), locked: locked)
        }
        return receipts
    }

    /// The file ends in `[at, size)`, a line without its newline. Torn by a crash or a full
    /// disk while this sink wrote, it is cut, and its event is sent again whole. But another
    /// process may be writing it (an agent's marker; a writer that takes no lock): the line
    /// must look like one of this sink's, the lock be held, and the file not grow for a
    /// moment; else the line is ended with a newline, which cuts no one's bytes, and the next
    /// line starts clean. A file that grew to end in a newline needs nothing.
    func endTornLine(
        _ fd: Int32, _ file: String, at: Int64, size: Int64, ours: Bool, locked: Bool
    ) throws(SinkError) {
        let settle = Self.tornLineSettle.components
        usleep(useconds_t(settle.seconds * 1_000_000 + settle.attoseconds / 1_000_000_000_000))
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw SinkError.closed(sink: name, reason: "cannot read back \(file): \(POSIX.errnoText())")
        }
        let grew = Int64(info.st_size) != size
        if grew {
            var last: UInt8 = 0
            if pread(fd, &last, 1, off_t(info.st_size) - 1) == 1, last == 0x0A { return }
        }
        let bytes = size - at
        if ours, locked, !grew {
            guard ftruncate(fd, off_t(at)) == 0 else {
                throw SinkError.closed(
                    sink: name, reason: "cannot cut the torn last line of \(file): \(POSIX.errnoText())")
            }
            logger?.warning(
                "cut a torn last line left by a crash or a full disk; its event is sent again whole",
                metadata: ["sink": "\(name)", "path": "\(file)", "bytes": "\(bytes)"])
            return
        }
        if let failure = POSIX.writeAll([0x0A], to: fd).failure {
            throw SinkError.closed(
                sink: name, reason: "cannot end the last line of \(file): \(POSIX.errnoText(failure))")
        }
        logger?.warning(
            "the file ended in a line without its newline that may be another writer's; ended it with one, cutting nothing",
            metadata: [
                "sink": "\(name)", "path": "\(file)", "bytes": "\(bytes)",
                "why":
                    "\(!ours ? "not a line of this sink's format" : grew ? "the file grew meanwhile" : "no lock on the file")",
            ])
    }
}
