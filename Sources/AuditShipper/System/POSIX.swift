#if canImport(Glibc)
    import Glibc
#endif

/// The one layer between the daemon's own files and sockets and the kernel: the state store,
/// its update log, the receipt logs, the dead-letter file, the file sink and its mark, the
/// stderr writer and the datagram sockets all call it. An interrupted call is retried on EINTR
/// here and nowhere else, a failure is errno's text (never a number), no file of the daemon's
/// is opened through a symbolic link, and a unix socket path that does not fit is refused
/// instead of cut. After swift-nio's `NIOPosix/System.swift` (one retrying `syscall` wrapper).
enum POSIX {
    /// errno (or `code`) in words: "No space left on device".
    static func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

    /// `call` again while it fails with EINTR; otherwise its result (errno kept for the caller).
    static func retrying<Result: SignedInteger>(_ call: () -> Result) -> Result {
        while true {
            let result = call()
            if result < 0 && errno == EINTR { continue }
            return result
        }
    }

    /// Why a file of the daemon's could not be opened.
    enum OpenFailure: Error, Equatable {
        /// There is none (ENOENT).
        case missing
        /// The path is a symbolic link, which no file of the daemon's may be: one planted
        /// where a file is expected would redirect a write or a read.
        case symbolicLink
        /// It is a directory, a socket, a device: anything but a regular file.
        case notRegular
        /// Any other failure, in words.
        case failed(String)
    }

    /// Who a file this process creates should belong to: the owner of `directory` when this
    /// process is root and the directory is someone else's (a service's state directory,
    /// prepared by root), so the service can still open it; nil otherwise.
    static func foreignOwner(of directory: String) -> (uid: uid_t, gid: gid_t)? {
        var info = stat()
        guard geteuid() == 0, stat(directory, &info) == 0, info.st_uid != 0 else { return nil }
        return (info.st_uid, info.st_gid)
    }

    /// Opens `path` close-on-exec without following a symbolic link, and insists on a regular
    /// file; a file created (`O_CREAT`) is given to `owner` (`foreignOwner`).
    static func openRegular(
        _ path: String, _ flags: Int32, mode: mode_t = 0, owner: (uid: uid_t, gid: gid_t)? = nil
    ) -> Result<Int32, OpenFailure> {
        let fd = retrying { open(path, flags | O_NOFOLLOW | O_CLOEXEC, mode) }
        guard fd >= 0 else {
            switch errno {
            case ENOENT: return .failure(.missing)
            case ELOOP: return .failure(.symbolicLink)
            default: return .failure(.failed(errnoText()))
            }
        }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            return .failure(.notRegular)
        }
        if flags & O_CREAT != 0, let owner { _ = fchown(fd, owner.uid, owner.gid) }
        return .success(fd)
    }

    /// Every byte of `fd` from its offset to its end; on a failure, errno's text.
    static func readAll(_ fd: Int32) -> Result<[UInt8], OpenFailure> {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = retrying { chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } }
            if n < 0 { return .failure(.failed(errnoText())) }
            if n == 0 { return .success(bytes) }
            bytes.append(contentsOf: chunk[..<n])
        }
    }

    /// A regular file's bytes, read without following a symbolic link.
    static func readRegular(_ path: String) -> Result<[UInt8], OpenFailure> {
        openRegular(path, O_RDONLY).flatMap { fd in
            defer { close(fd) }
            return readAll(fd)
        }
    }

    /// Writes every byte, resuming after EINTR and short writes; on a failure, how many bytes
    /// were written before it (a line sink takes back a line cut short) and errno.
    static func writeAll(_ bytes: UnsafeRawBufferPointer, to fd: Int32) -> (written: Int, failure: Int32?) {
        var written = 0
        while written < bytes.count {
            let n = retrying { write(fd, bytes.baseAddress! + written, bytes.count - written) }
            if n < 0 { return (written, errno) }
            written += n
        }
        return (written, nil)
    }

    static func writeAll(_ bytes: [UInt8], to fd: Int32) -> (written: Int, failure: Int32?) {
        bytes.withUnsafeBytes { writeAll($0, to: fd) }
    }

    /// connect(2) to the unix socket at `path`: 0, or -1 with errno set (ENAMETOOLONG when the
    /// path does not fit a `sockaddr_un` with its terminating NUL, rather than connecting to
    /// the path cut short).
    static func connect(_ fd: Int32, unixPath path: String) -> Int32 {
        withUnixAddress(path) { address, size in retrying { Glibc.connect(fd, address, size) } }
    }

    /// bind(2) to `path`, refusing a path too long as `connect` does.
    static func bind(_ fd: Int32, unixPath path: String) -> Int32 {
        withUnixAddress(path) { address, size in Glibc.bind(fd, address, size) }
    }

    /// The one place a `sockaddr_un` is built: a path that does not fit with its NUL is
    /// ENAMETOOLONG, never cut short (which would name another socket).
    static func withUnixAddress(
        _ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32
    ) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            errno = ENAMETOOLONG
            return -1
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }
}
