import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Where the items the cycle cannot read are set aside, whole, beside the state file
/// (`<state file>.dead-letters`): one JSON line each, appended and synced before the cycle
/// moves past them, so an item that would otherwise stall every sink (or be dropped unseen)
/// is kept for an operator, not lost.
///
/// A line: `{"set_aside_at":"<RFC 3339>","reason":"…","id":"…" or null,"item":"<the item's
/// bytes as a JSON string>"}`; `jq -r .item` gives back the item as the API sent it. An item
/// is written once: lookback re-reads and retried slices list it again, so the items already
/// in the file (read when it is first needed) and those written since are remembered, by
/// their bytes. Without a path (`replay`, which keeps no state) nothing is written; the
/// cycle still names each item in an error line.
public final class DeadLetterFile: Sendable {
    public let path: String?
    /// The items already set aside, by their bytes; nil until the file is first read.
    let known = Mutex<Set<[UInt8]>?>(nil)
    /// The state directory's owner when root writes there for a service (see `StateStore`).
    let owner: (uid: uid_t, gid: gid_t)?
    /// How many items are remembered: past it a repeat may be written again (once per restart
    /// of the count), rather than memory growing with what a hostile server sends.
    static let rememberedItems = 100_000

    public init(path: String?) {
        self.path = path
        owner = path.flatMap { StateStore.foreignOwner(of: ($0 as NSString).deletingLastPathComponent) }
    }

    /// `<state file>.dead-letters`.
    public static func path(statePath: String) -> String { statePath + ".dead-letters" }

    /// Sets `item` aside at `now`; false when it was set aside before (nothing is written).
    /// Throws when it cannot be written: the cycle must not go past an item it did not keep.
    public func setAside(_ item: UnreadableItem, now: Int64) throws(StateError) -> Bool {
        try known.withLock { known throws(StateError) in
            if known == nil { known = try read() }
            guard !known!.contains(item.json) else { return false }
            if let path { try append(Self.line(item, now: now), to: path) }
            if known!.count >= Self.rememberedItems { known!.removeAll() }
            known!.insert(item.json)
            return true
        }
    }

    /// Reads what the file holds now, at start (a link planted there is refused then, as one
    /// at the state's path is), so that the first item set aside does not read it again.
    public func open() throws(StateError) {
        try known.withLock { known throws(StateError) in
            if known == nil { known = try read() }
        }
    }

    /// The items the file holds, by their bytes (an unreadable line is skipped: it names no item).
    func read() throws(StateError) -> Set<[UInt8]> {
        guard let path, let data = try StateStore.readRegular(path, what: "dead-letter file") else { return [] }
        struct Line: Decodable { let item: String }
        let decoder = JSONDecoder()
        return Set(
            data.split(separator: 0x0A).compactMap { line in
                (try? decoder.decode(Line.self, from: Data(line))).map { Array($0.item.utf8) }
            })
    }

    static func line(_ item: UnreadableItem, now: Int64) -> [UInt8] {
        var line: [UInt8] = Array(#"{"set_aside_at":"#.utf8)
        JSONString.append(TimeSpec.format(now), to: &line)
        line.append(contentsOf: #","reason":"#.utf8)
        JSONString.append(item.reason, to: &line)
        line.append(contentsOf: #","id":"#.utf8)
        if let id = item.id { JSONString.append(id, to: &line) } else { line.append(contentsOf: "null".utf8) }
        line.append(contentsOf: #","item":"#.utf8)
        item.json.withUnsafeBufferPointer { JSONString.append(utf8: $0, to: &line) }
        line.append(contentsOf: "}\n".utf8)
        return line
    }

    /// One `O_APPEND` write of the whole line, then `fdatasync`: the position that moves past
    /// the item is synced after it, so the item is on disk first.
    func append(_ line: [UInt8], to path: String) throws(StateError) {
        let fd = try StateStore.openRegular(
            path, O_WRONLY | O_APPEND | O_CREAT, mode: 0o600, owner: owner, what: "dead-letter file")
        defer { close(fd) }
        try StateStore.writeAll(line, to: fd, path: path)
        guard fdatasync(fd) == 0 else {
            throw .unwritable(path: path, reason: "cannot sync the dead-letter file: \(StateStore.errnoText())")
        }
    }
}
