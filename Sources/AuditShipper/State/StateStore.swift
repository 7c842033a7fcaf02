import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The state file on disk: exclusive lock, atomic replace, strict reading.
///
/// The lock is taken on `<path>.lock` beside the file, not on the file itself: the state is
/// replaced by rename, which would leave a lock on the old inode behind.
public final class StateStore: Sendable {
    public let path: String
    let lockFD: Int32
    /// The directory's owner when root works on another user's state (`state reset` on a
    /// service's `DynamicUser=` state directory): files root creates are given to it, so the
    /// service can still read and replace them.
    let owner: (uid: uid_t, gid: gid_t)?

    /// Opens (creating the directory if needed) and locks; throws `.locked` if another process
    /// holds it. Without `lock` (for `state show` beside a running daemon) it only reads.
    public init(path: String, lock: Bool = true) throws(StateError) {
        self.path = path
        let directory = (path as NSString).deletingLastPathComponent
        owner = Self.foreignOwner(of: directory.isEmpty ? "." : directory)
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
                : .unwritable(path: path, reason: "cannot lock \(lockPath): \(String(cString: strerror(code)))")
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

    deinit { if lockFD >= 0 { close(lockFD) } }

    /// The owner of `directory` if this process is root and the directory belongs to someone else.
    static func foreignOwner(of directory: String) -> (uid: uid_t, gid: gid_t)? {
        var info = stat()
        guard geteuid() == 0, stat(directory, &info) == 0, info.st_uid != 0 else { return nil }
        return (info.st_uid, info.st_gid)
    }

    static func adopt(_ fd: Int32, owner: (uid: uid_t, gid: gid_t)?) {
        if let owner { _ = fchown(fd, owner.uid, owner.gid) }
    }

    /// The stored state, or nil when there is none (first run). Never resets anything by itself.
    public func load() throws(StateError) -> AuditState? {
        guard let bytes = try Self.readRegular(path, what: "state file") else { return nil }
        let data = Data(bytes)
        struct Versioned: Decodable { let version: Int? }
        let version: Int?
        do {
            version = try JSONDecoder().decode(Versioned.self, from: data).version
        } catch {
            throw .corrupt(path: path, reason: data.isEmpty ? "the file is empty" : "not a JSON object")
        }
        guard let version else { throw .corrupt(path: path, reason: "no \"version\"") }
        guard (1...AuditState.currentVersion).contains(version) else {
            throw .unsupportedVersion(path: path, version: version)
        }
        do {
            return try JSONDecoder().decode(AuditState.self, from: data)
        } catch let DecodingError.keyNotFound(key, _) {
            throw .corrupt(path: path, reason: "missing \"\(key.stringValue)\"")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let where_ = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw .corrupt(path: path, reason: "wrong type at \"\(where_)\"")
        } catch {
            throw .corrupt(path: path, reason: "\(error)")
        }
    }

    /// Writes a temporary file in the same directory, fsyncs it, renames it over the state,
    /// then fsyncs the directory: a crash at any point leaves the old or the new file whole.
    /// The temporary name is unpredictable and created exclusively, so nothing planted in the
    /// directory can be written through.
    public func save(_ state: AuditState) throws(StateError) {
        let data = state.encoded()
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
        let directory = (path as NSString).deletingLastPathComponent
        let dirFD = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            defer { close(dirFD) }
            guard fsync(dirFD) == 0 else {
                throw .unwritable(path: path, reason: "fsync of the directory: \(Self.errnoText())")
            }
        }
    }

    /// Deletes the state: the next run is a first run.
    /// Renames the state file to `<path>.before-reset-<unix time>` and returns that name; nil
    /// when there is no file. `state reset` keeps the old file for inspection this way.
    public func setAside(now: Int64) throws(StateError) -> String? {
        let aside = "\(path).before-reset-\(now)"
        guard rename(path, aside) == 0 else {
            if errno == ENOENT { return nil }
            throw .unwritable(path: path, reason: "cannot rename it to \(aside): \(Self.errnoText())")
        }
        return aside
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }

    /// Opens a file of the state's (state, lock, temporary, receipts) without following a
    /// symbolic link, and insists on a regular file; one root creates for a service's
    /// directory is given to the service (`owner`).
    static func openRegular(
        _ path: String, _ flags: Int32, mode: mode_t, owner: (uid: uid_t, gid: gid_t)?, what: String
    ) throws(StateError) -> Int32 {
        let fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else {
            if errno == ELOOP { throw .symbolicLink(path: path, what: what) }
            throw .unwritable(path: path, reason: "cannot open the \(what) \(path): \(errnoText())")
        }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw .unwritable(path: path, reason: "the \(what) \(path) is not a regular file")
        }
        if flags & O_CREAT != 0 { adopt(fd, owner: owner) }
        return fd
    }

    /// A regular file's bytes, nil when there is none; never through a symbolic link.
    static func readRegular(_ path: String, what: String) throws(StateError) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            switch errno {
            case ENOENT: return nil
            case ELOOP: throw .symbolicLink(path: path, what: what)
            default: throw .unreadable(path: path, reason: errnoText())
            }
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw .unreadable(path: path, reason: "the \(what) is not a regular file")
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .unreadable(path: path, reason: errnoText())
            }
            if n == 0 { return bytes }
            bytes.append(contentsOf: chunk[..<n])
        }
    }

    /// Writes every byte, resuming after EINTR and short writes.
    static func writeAll(_ bytes: [UInt8], to fd: Int32, path: String) throws(StateError) {
        var failure: String?
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = "write: \(errnoText())"
                    return
                }
                offset += n
            }
        }
        if let failure { throw .unwritable(path: path, reason: failure) }
    }
}
