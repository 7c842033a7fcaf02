import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A sink's record of the events its destination took since its position was last written:
/// one line per event, appended with a plain `write()` as soon as the destination took it.
///
/// The state cannot be fsynced per event, but a `write()` that returned is in the kernel's
/// page cache and survives `kill -9` of this process. So after a crash, the events of the
/// interrupted batch that the journal already holds are known and not sent again. (A crash
/// of the whole machine can lose both this record and the journal's own unsynced entries.)
/// The window between the destination taking an event and its line here is a few
/// instructions; writing the line first would lose an event there instead of repeating one.
/// A sink whose destination answers each event (RELP) also notes what it is about to write
/// (`recordWritten`), so that what a crash left in flight is known and its resending counted.
/// A sink whose destination confirms a request later (Splunk's indexer acknowledgement)
/// notes each request it is waiting on (`recordAwaited`), so that a new process can ask about
/// it instead of sending it again.
public final class ReceiptLog: Sendable {
    public let path: String
    let descriptor = Mutex<Int32>(-1)
    /// The state directory's owner when root writes there for a service (see `StateStore`).
    let owner: (uid: uid_t, gid: gid_t)?

    public init(path: String) {
        self.path = path
        owner = POSIX.foreignOwner(of: (path as NSString).deletingLastPathComponent)
    }

    deinit {
        let fd = descriptor.withLock { $0 }
        if fd >= 0 { close(fd) }
    }

    /// Appends one event; throws `StateError` when the line could not be written.
    public func record(_ event: AuditEvent) throws(StateError) {
        var line: [UInt8] = Array(#"{"id":"#.utf8)
        event.hashedID.withUTF8 { JSONString.append(utf8: $0, to: &line) }
        line.append(contentsOf: #","effective_at":\#(event.effectiveAt)}"#.utf8)
        line.append(0x0A)
        try append(line)
    }

    /// Appends receipts for events known only by their id and time (those of a request the
    /// destination confirmed, `Awaited`), in one `write()`.
    public func record(_ receipts: [Receipt]) throws(StateError) {
        guard !receipts.isEmpty else { return }
        var lines: [UInt8] = []
        for receipt in receipts {
            lines.append(contentsOf: #"{"id":"#.utf8)
            JSONString.append(receipt.id, to: &lines)
            lines.append(contentsOf: #","effective_at":\#(receipt.effectiveAt)}"#.utf8)
            lines.append(0x0A)
        }
        try append(lines)
    }

    /// Notes events about to be written to a destination that answers each one (RELP), in
    /// one `write()`, before they are written there: after a crash, an event noted here with
    /// no receipt after it was in flight, and sending it again is counted as a resend. (A
    /// crash between this note and the destination's write counts one that never left.)
    public func recordWritten(_ events: ArraySlice<AuditEvent>) throws(StateError) {
        guard !events.isEmpty else { return }
        var lines: [UInt8] = []
        lines.reserveCapacity(events.count * 40)
        for event in events {
            lines.append(contentsOf: #"{"written":"#.utf8)
            event.hashedID.withUTF8 { JSONString.append(utf8: $0, to: &lines) }
            lines.append(contentsOf: "}\n".utf8)
        }
        try append(lines)
    }

    /// Notes a request the destination took under `ack` at `sentAt` (Unix seconds) and has not
    /// confirmed yet, with its events, in one `write()`: until each event has a receipt
    /// (`record`, once the destination confirms), a new process finds it in `contents().awaited`.
    public func recordAwaited(ack: Int, sentAt: Int64, events: ArraySlice<AuditEvent>) throws(StateError) {
        var line: [UInt8] = Array(#"{"ack_id":\#(ack),"sent_at":\#(sentAt),"events":["#.utf8)
        for (index, event) in events.enumerated() {
            line.append(contentsOf: (index == 0 ? #"{"id":"# : #",{"id":"#).utf8)
            event.hashedID.withUTF8 { JSONString.append(utf8: $0, to: &line) }
            line.append(contentsOf: #","effective_at":\#(event.effectiveAt)}"#.utf8)
        }
        line.append(contentsOf: "]}\n".utf8)
        try append(line)
    }

    /// Whole lines in one `write()`, through the descriptor kept open.
    func append(_ lines: [UInt8]) throws(StateError) {
        try descriptor.withLock { fd throws(StateError) in
            if fd < 0 { fd = try open(creating: true) }
            try StateStore.writeAll(lines, to: fd, path: path)
        }
    }

    /// The one way the record is opened, by `record` and `clear` alike: always `O_APPEND`,
    /// so that after `ftruncate` the next line lands at the new end, not at the offset an
    /// earlier write left (which made the file sparse and its first line unreadable: one
    /// event twice in the journal after a second crash).
    func open(creating: Bool) throws(StateError) -> Int32 {
        try StateStore.openRegular(
            path, O_WRONLY | O_APPEND | (creating ? O_CREAT : 0), mode: 0o600, owner: owner, what: "receipt log")
    }

    /// The events recorded since the last `clear()`. A last line cut by a crash is left out:
    /// its event's `write()` never returned, so it counts as not taken.
    public func read() throws(StateError) -> [Receipt] { try contents().receipts }

    /// A request noted by `recordAwaited` some of whose events have no receipt yet.
    public struct Awaited: Sendable, Equatable {
        public var ack: Int
        public var sentAt: Int64
        public var events: [Receipt]

        public init(ack: Int, sentAt: Int64, events: [Receipt]) {
            self.ack = ack
            self.sentAt = sentAt
            self.events = events
        }
    }

    /// What the record holds, from one read of the file.
    public struct Contents: Sendable {
        public var receipts: [Receipt] = []
        /// Noted by `recordWritten` with no receipt after: in flight when the record was last
        /// written, so their next sending may repeat them.
        public var inFlight = Set<String>()
        /// Requests still waiting on the destination's confirmation, oldest first.
        public var awaited: [Awaited] = []
    }

    /// The events noted by `recordWritten` with no receipt: in flight when the record was
    /// last written, so their next sending may repeat them.
    public func inFlight() throws(StateError) -> Set<String> { try contents().inFlight }

    /// Every reading of the record from one read of the file.
    public func contents() throws(StateError) -> Contents {
        var contents = Contents()
        var awaited: [Awaited] = []
        for line in try lines() {
            if let id = line.written {
                contents.inFlight.insert(id)
            } else if let ack = line.ackID, let sentAt = line.sentAt, let events = line.events {
                awaited.append(Awaited(ack: ack, sentAt: sentAt, events: events.map(\.receipt)))
            } else if let id = line.id, let effectiveAt = line.effectiveAt {
                contents.receipts.append(Receipt(id: id, effectiveAt: effectiveAt))
                contents.inFlight.remove(id)
            }
        }
        let received = Set(contents.receipts.map(\.id))
        contents.awaited = awaited.filter { !$0.events.allSatisfy { received.contains($0.id) } }
        return contents
    }

    struct Line: Decodable {
        struct Event: Decodable {
            let id: String
            let effectiveAt: Int64
            enum CodingKeys: String, CodingKey {
                case id
                case effectiveAt = "effective_at"
            }
            var receipt: Receipt { Receipt(id: id, effectiveAt: effectiveAt) }
        }
        let id: String?
        let effectiveAt: Int64?
        let written: String?
        let ackID: Int?
        let sentAt: Int64?
        let events: [Event]?
        enum CodingKeys: String, CodingKey {
            case id, written, events
            case effectiveAt = "effective_at"
            case ackID = "ack_id"
            case sentAt = "sent_at"
        }
    }

    func lines() throws(StateError) -> [Line] {
        let data: [UInt8]
        do {
            guard let bytes = try StateStore.readRegular(path, what: "receipt log") else { return [] }
            data = bytes
        }
        let decoder = JSONDecoder()
        return data.split(separator: 0x0A).compactMap { try? decoder.decode(Line.self, from: Data($0)) }
    }

    /// Empties the record: the position that covers it is on disk.
    public func clear() throws(StateError) {
        try descriptor.withLock { fd throws(StateError) in
            if fd < 0 {
                guard access(path, F_OK) == 0 else { return }
                fd = try open(creating: false)
            }
            guard ftruncate(fd, 0) == 0 else {
                throw .unwritable(path: path, reason: "cannot empty the receipt log: \(POSIX.errnoText())")
            }
        }
    }
}
