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
/// negative return for any event fails the batch too, and so does a journal that takes no
/// entry for `sendTimeout` (`JournalSender`: the sends run off the cycle's thread).
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
    /// Sends off the cycle's thread, and gives a batch up when the journal takes nothing for
    /// `sendTimeout` (a journald that stops reading its socket).
    let sender: JournalSender
    /// As long as a syslog sink's default `timeout`: a journald under load catches up within it.
    public static let defaultSendTimeout: Duration = .seconds(30)

    public init(
        name: String = "journald", identifier: String = defaultIdentifier, receiptLog: ReceiptLog? = nil,
        logger: Logger? = nil, sendTimeout: Duration = defaultSendTimeout
    ) {
        self.name = name
        self.identifier = identifier
        self.receiptLog = receiptLog
        self.logger = logger
        sender = JournalSender(timeout: sendTimeout)
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
        let identifier = self.identifier
        let receiptLog = self.receiptLog
        let outcome: JournalSender.Outcome
        do {
            outcome = try await sender.send(
                batch, entry: { JournalFields.fields(for: $0, identifier: identifier) },
                taken: { event in
                    // A receipt that cannot be written (a full disk) only narrows exactly-once
                    // to at-most-one-batch.
                    do throws(StateError) {
                        try receiptLog?.record(event)
                        return nil
                    } catch { return error }
                })
        } catch let timeout as JournalSender.Timeout {
            throw SinkError.writeFailed(
                sink: name,
                reason: "journald took no entry for \(Int(timeout.waited.components.seconds)) s: "
                    + "it is not reading \(Self.socketPath) (stopped or overloaded); the batch is retried, "
                    + "and the entries it took are not sent again")
        }
        switch outcome {
        case .failed(let code, let id):
            throw SinkError.writeFailed(
                sink: name, reason: "sd_journal_sendv failed for \(id): \(POSIX.errnoText(-code))")
        case .sent(let unrecorded?):
            logger?.warning(
                "cannot record which events the journal took; after a crash this batch may be sent again",
                metadata: ["sink": "\(name)", "error": "\(unrecorded)"])
        case .sent(nil): break
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

    /// Is journald there? The socket must exist and accept a connection, and no batch given
    /// up on may still be blocked in a send (journald is not reading).
    func probe() throws {
        if let blocked = sender.blockedFor {
            throw SinkError.closed(
                sink: name,
                reason: "journald has not taken an entry for \(Int(blocked.components.seconds)) s: "
                    + "it is not reading \(Self.socketPath) (stopped or overloaded)")
        }
        var info = stat()
        guard stat(Self.socketPath, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK else {
            throw SinkError.closed(sink: name, reason: "\(Self.socketPath) does not exist: journald is not running")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SinkError.writeFailed(sink: name, reason: POSIX.errnoText()) }
        defer { Glibc.close(fd) }
        guard POSIX.connect(fd, unixPath: Self.socketPath) == 0 else {
            throw SinkError.closed(
                sink: name,
                reason: "\(Self.socketPath) refuses connections (\(POSIX.errnoText())): journald is not running")
        }
    }
}
