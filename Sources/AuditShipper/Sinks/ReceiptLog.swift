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
        try descriptor.withLock { fd throws(StateError) in
            if fd < 0 { fd = try open(creating: true) }
            try StateStore.writeAll(line, to: fd, path: path)
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
    public func read() throws(StateError) -> [Receipt] {
        let data: [UInt8]
        do {
            guard let bytes = try StateStore.readRegular(path, what: "receipt log") else { return [] }
            data = bytes
        }
        struct Line: Decodable {
            let id: String
            let effectiveAt: Int64
            enum CodingKeys: String, CodingKey {
                case id
                case effectiveAt = "effective_at"
            }
        }
        let decoder = JSONDecoder()
        return data.split(separator: 0x0A).compactMap { line in
            (try? decoder.decode(Line.self, from: Data(line))).map { Receipt(id: $0.id, effectiveAt: $0.effectiveAt) }
        }
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
