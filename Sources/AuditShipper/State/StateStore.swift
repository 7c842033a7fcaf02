import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The state file on disk: exclusive lock, atomic replace, strict reading.
///
/// The lock is taken on `<path>.lock` beside the file, not on the file itself: the state is
/// replaced by rename, which would leave a lock on the old inode behind.
///
/// A large state is not rewritten after every batch: a batch's changes are appended to
/// `<path>.updates` (`StateUpdateLog`) and the file is rewritten whole when the log has grown
/// to `logGrowth` times the file, and at the end of every cycle, so between cycles the file
/// alone is the state.
public final class StateStore: Sendable {
    public let path: String
    /// `<path>.updates`: the batches written since the file was last written whole.
    public var updatesPath: String { path + ".updates" }
    let lockFD: Int32
    /// The directory's owner when root works on another user's state (`state reset` on a
    /// service's `DynamicUser=` state directory): files root creates are given to it, so the
    /// service can still read and replace them.
    let owner: (uid: uid_t, gid: gid_t)?
    let writer = Mutex(Writer())

    /// Why the state is written, which decides how.
    public enum Write: Sendable {
        /// After a batch: appended to the update log when the state is large and the log is
        /// not yet `logGrowth` times the file; else written whole.
        case batch
        /// Written whole (a new state, a new set of sinks, a retry after a failed write).
        case whole
        /// The end of a cycle: written whole if the log holds anything, else nothing to do.
        case cycleEnd
    }

    /// What this process wrote last: the file's generation and size, the log's size, and
    /// the shape of the state they hold. No generation: the next write is whole (the first
    /// after opening, and any after a failure).
    struct Writer {
        var generation: String?
        var fileBytes = 0
        var logBytes = 0
        var logFD: Int32 = -1
        var shape: Shape?
    }

    /// What an update line cannot change: which sinks there are, and the source.
    struct Shape: Equatable {
        var sinks: [String]
        var source: StateSource
        var startAt: Int64
        init(_ state: AuditState) {
            sinks = state.positions.keys.sorted()
            source = state.source
            startAt = state.startAt
        }
    }

    /// Below this size the state file is always written whole: appending saves nothing there.
    static let smallestLoggedState = 64 << 10

    /// How many times the file's size the update log may reach before the file is rewritten
    /// whole. Rewriting costs the file's size, so the whole writes cost 1 / `logGrowth` of
    /// what the log took in: at 1 they were as dear as the appends (a tenth of a dense burst's
    /// CPU, perf). Loading then reads at most this many times the file again, once, at start.
    public static let logGrowth = 4

    /// Opens (creating the directory if needed) and locks; throws `.locked` if another process
    /// holds it. Without `lock` (for `state show` beside a running daemon) it only reads.
    public init(path: String, lock: Bool = true) throws(StateError) {
        self.path = path
        let directory = (path as NSString).deletingLastPathComponent
        owner = POSIX.foreignOwner(of: directory.isEmpty ? "." : directory)
        guard lock else {
            lockFD = -1
            return
        }
        if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) {
            do {
                try FileManager.default.createDirectory(
                    atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw .unwritable(
                    path: path, reason: "cannot create directory \(directory): \(error.localizedDescription)")
            }
        }
        let lockPath = path + ".lock"
        // Never through a link: root must not truncate or chown a file someone planted here.
        let fd = try Self.openRegular(lockPath, O_RDWR | O_CREAT, mode: 0o600, owner: owner, what: "lock file")
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            var holder = "lock file \(lockPath)"
            if code == EWOULDBLOCK, let pid = try? String(contentsOfFile: lockPath, encoding: .utf8), !pid.isEmpty {
                holder = "pid \(pid.trimmingSpaces), lock file \(lockPath)"
            }
            close(fd)
            throw code == EWOULDBLOCK
                ? .locked(path: path, holder: holder)
                : .unwritable(path: path, reason: "cannot lock \(lockPath): \(POSIX.errnoText(code))")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        self.lockFD = fd
        removeTemporaryFiles()
    }

    /// Temporary files a crash left between create and rename (the lock is ours: no other
    /// writer can be using them).
    func removeTemporaryFiles() {
        let directory = (path as NSString).deletingLastPathComponent
        let prefix = (path as NSString).lastPathComponent + ".tmp"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.isEmpty ? "." : directory)) ?? []
        for name in names where name.hasPrefix(prefix) {
            unlink(directory.isEmpty ? name : "\(directory)/\(name)")
        }
    }

    deinit {
        if lockFD >= 0 { close(lockFD) }
        let logFD = writer.withLock { $0.logFD }
        if logFD >= 0 { close(logFD) }
    }

    /// The stored state, or nil when there is none (first run). Never resets anything by itself.
    public func load() throws(StateError) -> AuditState? {
        guard let bytes = try Self.readRegular(path, what: "state file") else { return nil }
        let data = Data(bytes)
        struct Versioned: Decodable {
            let version: Int?
            let generation: String?
        }
        let versioned: Versioned
        do {
            versioned = try JSONDecoder().decode(Versioned.self, from: data)
        } catch {
            throw .corrupt(path: path, reason: data.isEmpty ? "the file is empty" : "not a JSON object")
        }
        guard let version = versioned.version else { throw .corrupt(path: path, reason: "no \"version\"") }
        guard (1...AuditState.currentVersion).contains(version) else {
            throw .unsupportedVersion(path: path, version: version)
        }
        var state: AuditState
        do {
            state = try JSONDecoder().decode(AuditState.self, from: data)
        } catch let DecodingError.keyNotFound(key, _) {
            throw .corrupt(path: path, reason: "missing \"\(key.stringValue)\"")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let where_ = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw .corrupt(path: path, reason: "wrong type at \"\(where_)\"")
        } catch {
            throw .corrupt(path: path, reason: "\(error)")
        }
        // The batches since the file was written whole; a version 2 file has none (a log
        // beside it is stale: no writer of that version keeps one).
        if version >= 3, let generation = versioned.generation,
            let log = try Self.readRegular(updatesPath, what: "state update log")
        {
            _ = StateUpdateLog.apply(log, to: &state, generation: generation)
        }
        return state
    }

    /// Records `state`: appended to the update log or written whole, as `write` says (see
    /// `Write`). The caller marks the state written (`AuditState.markWritten`) once this returns.
    public func save(_ state: AuditState, as write: Write = .whole) throws(StateError) {
        try writer.withLock { writer throws(StateError) in
            switch write {
            case .cycleEnd:
                guard writer.logBytes > 0 || writer.generation == nil else { return }
            case .batch:
                if let generation = writer.generation, writer.fileBytes >= Self.smallestLoggedState,
                    writer.shape == Shape(state), state.positions.values.allSatisfy({ $0.unsavedIDs != nil })
                {
                    let line = StateUpdateLog.line(for: state, generation: generation)
                    if writer.logBytes + line.count <= Self.logGrowth * writer.fileBytes {
                        try append(line, &writer)
                        return
                    }
                }
            case .whole: break
            }
            try writeWhole(state, &writer)
        }
    }

    /// Appends one line to the update log and syncs it. On failure the log is cut back to its
    /// last whole line and the next write is whole, so no later line follows a torn one.
    func append(_ line: [UInt8], _ writer: inout Writer) throws(StateError) {
        do throws(StateError) {
            if writer.logFD < 0 {
                writer.logFD = try Self.openRegular(
                    updatesPath, O_WRONLY | O_APPEND | O_CREAT, mode: 0o600, owner: owner, what: "state update log")
            }
            try Self.writeAll(line, to: writer.logFD, path: updatesPath)
            guard fdatasync(writer.logFD) == 0 else {
                throw .unwritable(path: updatesPath, reason: "fdatasync: \(Self.errnoText())")
            }
            writer.logBytes += line.count
        } catch {
            if writer.logFD >= 0 { _ = ftruncate(writer.logFD, off_t(writer.logBytes)) }
            writer.generation = nil
            throw error
        }
    }

    /// Writes a temporary file in the same directory, fsyncs it, renames it over the state,
    /// empties the update log, then fsyncs the directory: a crash at any point leaves the old
    /// or the new file whole, and the log's lines name the generation they follow, so lines
    /// of the old one left by a crash before the log was emptied are skipped. The log is
    /// created here if need be, so that the directory's fsync also makes its name durable.
    /// The temporary name is unpredictable and created exclusively, so nothing planted in the
    /// directory can be written through.
    func writeWhole(_ state: AuditState, _ writer: inout Writer) throws(StateError) {
        writer.generation = nil
        let generation = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let data = state.encoded(generation: generation)
        if writer.logFD < 0 {
            writer.logFD = try Self.openRegular(
                updatesPath, O_WRONLY | O_APPEND | O_CREAT, mode: 0o600, owner: owner, what: "state update log")
        }
        let temporary = "\(path).tmp-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let fd = try Self.openRegular(
            temporary, O_WRONLY | O_CREAT | O_EXCL, mode: 0o600, owner: owner, what: "temporary file")
        var failure: StateError?
        do throws(StateError) {
            try Self.writeAll(data, to: fd, path: path)
        } catch {
            failure = error
        }
        if failure == nil, fsync(fd) != 0 { failure = .unwritable(path: path, reason: "fsync: \(Self.errnoText())") }
        close(fd)
        if failure == nil, rename(temporary, path) != 0 {
            failure = .unwritable(path: path, reason: "rename: \(Self.errnoText())")
        }
        if let failure {
            unlink(temporary)
            throw failure
        }
        // Stale from here on (another generation); emptied so it does not grow. If this fails
        // the lines are still skipped, and the log's size is what it is.
        var size = 0
        if ftruncate(writer.logFD, 0) != 0 {
            var info = stat()
            size = fstat(writer.logFD, &info) == 0 ? Int(info.st_size) : Int.max / 2
        }
        let directory = (path as NSString).deletingLastPathComponent
        let dirFD = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            defer { close(dirFD) }
            guard fsync(dirFD) == 0 else {
                throw .unwritable(path: path, reason: "fsync of the directory: \(Self.errnoText())")
            }
        }
        writer = Writer(
            generation: generation, fileBytes: data.count, logBytes: size, logFD: writer.logFD, shape: Shape(state))
    }

    /// Sets the state aside, so the next run is a first run: renames the state file to `<path>.before-reset-<unix time>` and returns that name; nil
    /// when there is no file. `state reset` keeps the old file for inspection this way.
    public func setAside(now: Int64) throws(StateError) -> String? {
        let aside = "\(path).before-reset-\(now)"
        guard rename(path, aside) == 0 else {
            if errno == ENOENT { return nil }
            throw .unwritable(path: path, reason: "cannot rename it to \(aside): \(Self.errnoText())")
        }
        // Its update log goes with it, so what is kept for inspection is the whole state; a
        // descriptor this store holds on it is closed, or the next write would empty it there.
        writer.withLock { writer in
            if writer.logFD >= 0 { close(writer.logFD) }
            writer = Writer()
        }
        if rename(updatesPath, aside + ".updates") != 0, errno != ENOENT {
            throw .unwritable(path: path, reason: "cannot rename \(updatesPath): \(Self.errnoText())")
        }
        return aside
    }

    static func errnoText() -> String { POSIX.errnoText() }

    /// Opens a file of the state's (state, lock, temporary, receipts, dead letters) without
    /// following a symbolic link (`POSIX.openRegular`), as a `StateError` naming `what`; one
    /// root creates for a service's directory is given to the service (`owner`).
    static func openRegular(
        _ path: String, _ flags: Int32, mode: mode_t, owner: (uid: uid_t, gid: gid_t)?, what: String
    ) throws(StateError) -> Int32 {
        switch POSIX.openRegular(path, flags, mode: mode, owner: owner) {
        case .success(let fd): return fd
        case .failure(.symbolicLink): throw .symbolicLink(path: path, what: what)
        case .failure(.notRegular): throw .unwritable(path: path, reason: "the \(what) \(path) is not a regular file")
        case .failure(.missing):
            throw .unwritable(path: path, reason: "cannot open the \(what) \(path): \(POSIX.errnoText(ENOENT))")
        case .failure(.failed(let reason)):
            throw .unwritable(path: path, reason: "cannot open the \(what) \(path): \(reason)")
        }
    }

    /// A regular file's bytes, nil when there is none; never through a symbolic link.
    static func readRegular(_ path: String, what: String) throws(StateError) -> [UInt8]? {
        try reading(POSIX.readRegular(path), path: path, what: what)
    }

    /// What reading a file of the state's gave, as a `StateError` naming `what`: nil when there
    /// is no file.
    static func reading<Value>(
        _ result: Result<Value, POSIX.OpenFailure>, path: String, what: String
    ) throws(StateError) -> Value? {
        switch result {
        case .success(let value): return value
        case .failure(.missing): return nil
        case .failure(.symbolicLink): throw .symbolicLink(path: path, what: what)
        case .failure(.notRegular): throw .unreadable(path: path, reason: "the \(what) is not a regular file")
        case .failure(.failed(let reason)): throw .unreadable(path: path, reason: reason)
        }
    }

    /// Writes every byte (`POSIX.writeAll`), as a `StateError`.
    static func writeAll(_ bytes: [UInt8], to fd: Int32, path: String) throws(StateError) {
        if let failure = POSIX.writeAll(bytes, to: fd).failure {
            throw .unwritable(path: path, reason: "write: \(POSIX.errnoText(failure))")
        }
    }
}
