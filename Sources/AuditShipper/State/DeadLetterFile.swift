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
/// in the file (read at start, a chunk at a time) and those written since are remembered, by
/// a keyed hash of their bytes (`identity`: `Hasher`'s SipHash with this process's random
/// seed, which a server cannot aim a collision at; the bytes themselves, up to a page each,
/// are not held). Without a path (`replay`, which keeps no state) nothing is written; the
/// cycle still names each item in an error line.
public final class DeadLetterFile: Sendable {
    public let path: String?
    /// The items already set aside, by `identity`; nil until the file is first read.
    let known = Mutex<Set<Int>?>(nil)
    /// The state directory's owner when root writes there for a service (see `StateStore`).
    let owner: (uid: uid_t, gid: gid_t)?
    /// How many items are remembered: past it a repeat may be written again (once per restart
    /// of the count), rather than memory growing with what a hostile server sends.
    static let rememberedItems = 100_000

    public init(path: String?) {
        self.path = path
        owner = path.flatMap { POSIX.foreignOwner(of: ($0 as NSString).deletingLastPathComponent) }
    }

    /// `<state file>.dead-letters`.
    public static func path(statePath: String) -> String { statePath + ".dead-letters" }

    /// Sets `item` aside at `now`; false when it was set aside before (nothing is written).
    /// Throws when it cannot be written: the cycle must not go past an item it did not keep.
    public func setAside(_ item: UnreadableItem, now: Int64) throws(StateError) -> Bool {
        try known.withLock { known throws(StateError) in
            if known == nil { known = try read() }
            let identity = Self.identity(item.json)
            guard !known!.contains(identity) else { return false }
            if let path { try append(Self.line(item, now: now), to: path) }
            if known!.count >= Self.rememberedItems { known!.removeAll() }
            known!.insert(identity)
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

    /// What an item is remembered by: its bytes' keyed hash (seeded afresh in each process).
    static func identity(_ bytes: [UInt8]) -> Int {
        var hasher = Hasher()
        hasher.combine(bytes.count)
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
        return hasher.finalize()
    }

    /// The items the file holds, by `identity`, read a chunk at a time so a large file is
    /// never held whole (an unreadable line is skipped: it names no item).
    func read() throws(StateError) -> Set<Int> {
        guard let path,
            let fd = try StateStore.reading(POSIX.openRegular(path, O_RDONLY), path: path, what: "dead-letter file")
        else { return [] }
        defer { close(fd) }
        struct Line: Decodable { let item: String }
        let decoder = JSONDecoder()
        var known = Set<Int>()
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = POSIX.retrying { chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) } }
            guard n >= 0 else { throw .unreadable(path: path, reason: POSIX.errnoText()) }
            // The last line, complete or cut by a crash, is read as any other at the end.
            var lines = (pending + chunk[..<n]).split(separator: 0x0A, omittingEmptySubsequences: false)
            pending = n == 0 ? [] : Array(lines.removeLast())
            for line in lines where !line.isEmpty {
                if let decoded = try? decoder.decode(Line.self, from: Data(line)) {
                    known.insert(Self.identity(Array(decoded.item.utf8)))
                }
            }
            if n == 0 { return known }
        }
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
            throw .unwritable(path: path, reason: "cannot sync the dead-letter file: \(POSIX.errnoText())")
        }
    }
}
