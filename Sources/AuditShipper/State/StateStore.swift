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
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .unwritable(path: path, reason: "cannot open \(lockPath): \(Self.errnoText())") }
        Self.adopt(fd, owner: owner)
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
        guard let data = FileManager.default.contents(atPath: path) else {
            if access(path, F_OK) != 0, errno == ENOENT { return nil }
            throw .unreadable(path: path, reason: Self.errnoText())
        }
        struct Versioned: Decodable { let version: Int? }
        let version: Int?
        do {
            version = try JSONDecoder().decode(Versioned.self, from: data).version
        } catch {
            throw .corrupt(path: path, reason: data.isEmpty ? "the file is empty" : "not a JSON object")
        }
        guard let version else { throw .corrupt(path: path, reason: "no \"version\"") }
        guard version == AuditState.currentVersion else { throw .unsupportedVersion(path: path, version: version) }
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
    public func save(_ state: AuditState) throws(StateError) {
        let data = state.encoded()
        let temporary = "\(path).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .unwritable(path: path, reason: "cannot create \(temporary): \(Self.errnoText())") }
        Self.adopt(fd, owner: owner)
        var failure: String?
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = "write: \(Self.errnoText())"
                    return
                }
                offset += n
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = "fsync: \(Self.errnoText())" }
        close(fd)
        if failure == nil, rename(temporary, path) != 0 { failure = "rename: \(Self.errnoText())" }
        if let failure {
            unlink(temporary)
            throw .unwritable(path: path, reason: failure)
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
}
