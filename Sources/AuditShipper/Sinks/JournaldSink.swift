import CSystemd
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Each event as one journal entry, through libsystemd's `sd_journal_sendv`.
///
/// `sd_journal_sendv` returns success when no journald listens (no socket file), so the
/// socket is probed before every batch: missing, or present with nobody reading (a stopped
/// journald leaves it behind), fails the batch and the sink's position does not move. A
/// negative return for any event fails the batch too.
///
/// Exactly once: the journal takes entries one by one, and each one it took is written to
/// the `ReceiptLog` at once. The events of a batch cut short (by a failure, or by `kill -9`)
/// that the journal holds are then known and never sent twice, without reading the journal
/// back (the service's DynamicUser may not read the system journal).
public struct JournaldSink: Sink {
    public static let socketPath = "/run/systemd/journal/socket"
    /// Event entries' `SYSLOG_IDENTIFIER` unless configured: not the daemon's own
    /// `openai-auditd`, so `journalctl -t openai-audit` is the audit trail alone.
    public static let defaultIdentifier = Configuration.journaldIdentifier
    public let name: String
    public let identifier: String
    /// nil where nothing may be recorded (`replay`, which keeps no position).
    let receiptLog: ReceiptLog?
    let logger: Logger?

    public init(
        name: String = "journald", identifier: String = defaultIdentifier, receiptLog: ReceiptLog? = nil,
        logger: Logger? = nil
    ) {
        self.name = name
        self.identifier = identifier
        self.receiptLog = receiptLog
        self.logger = logger
    }

    public func receipts() async throws -> [Receipt] {
        try receiptLog?.read() ?? []
    }

    public func positionRecorded() async throws {
        try receiptLog?.clear()
    }

    public func check() async throws {
        try probe()
    }

    public func deliver(_ batch: [AuditEvent]) async throws {
        try probe()
        var unrecorded: StateError?
        for event in batch {
            let code = Self.send(JournalFields.fields(for: event, identifier: identifier))
            guard code >= 0 else {
                throw SinkError.writeFailed(
                    sink: name, reason: "sd_journal_sendv failed for \(event.id): \(String(cString: strerror(-code)))")
            }
            // The entry is in the journal whatever happens to its receipt: a receipt that
            // cannot be written (a full disk) only narrows exactly-once to at-most-one-batch.
            if unrecorded == nil {
                do { try receiptLog?.record(event) } catch { unrecorded = error }
            }
        }
        if let unrecorded {
            logger?.warning(
                "cannot record which events the journal took; after a crash this batch may be sent again",
                metadata: ["sink": "\(name)", "error": "\(unrecorded)"])
        }
    }

    /// One entry: every field as `NAME=value` bytes in one buffer, an iovec for each.
    static func send(_ fields: [(name: String, value: [UInt8])]) -> Int32 {
        var storage: [UInt8] = []
        var ranges: [Range<Int>] = []
        storage.reserveCapacity(fields.reduce(0) { $0 + $1.name.utf8.count + 1 + $1.value.count })
        for field in fields {
            let start = storage.count
            storage.append(contentsOf: field.name.utf8)
            storage.append(UInt8(ascii: "="))
            storage.append(contentsOf: field.value)
            ranges.append(start..<storage.count)
        }
        return storage.withUnsafeMutableBytes { raw in
            var vectors = ranges.map { iovec(iov_base: raw.baseAddress! + $0.lowerBound, iov_len: $0.count) }
            return sd_journal_sendv(&vectors, Int32(vectors.count))
        }
    }

    /// Is journald there? The socket must exist and accept a connection.
    func probe() throws {
        var info = stat()
        guard stat(Self.socketPath, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK else {
            throw SinkError.closed(sink: name, reason: "\(Self.socketPath) does not exist: journald is not running")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SinkError.writeFailed(sink: name, reason: String(cString: strerror(errno))) }
        defer { Glibc.close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { path in
            for (index, byte) in Self.socketPath.utf8.enumerated() where index < path.count - 1 { path[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            throw SinkError.closed(
                sink: name,
                reason:
                    "\(Self.socketPath) refuses connections (\(String(cString: strerror(errno)))): journald is not running"
            )
        }
    }
}
