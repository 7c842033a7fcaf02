import Foundation

/// The state's updates since the state file was last written whole: `<state>.updates`, one
/// line per batch, appended and fdatasync'ed by `StateStore`.
///
/// Under a dense burst a sink's `recent` holds every id of the lookback (tens of thousands),
/// and rewriting all of them after each batch of 1,000 cost more than everything else the
/// daemon did. A line holds only what the batch changed: each sink's scalars and the ids it
/// added. Ids that pruning dropped are not listed: a reader drops them the same way when
/// `recent_since` rises.
///
/// A line is `<JSON> <checksum>\n`, the checksum being FNV-1a 64 of the JSON in 16 hex
/// digits: a line cut by a crash (or filled with whatever the disk held) fails it, and
/// reading stops there. Every line names the generation of the state file it follows; after
/// the file is rewritten whole under a new generation, lines of the old one (left if a crash
/// came before the log was emptied) are skipped.
enum StateUpdateLog {
    /// The line recording `state`'s positions (their scalars and `unsavedIDs` ids).
    /// Precondition: every position has `unsavedIDs` (none was replaced whole).
    static func line(for state: AuditState, generation: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128 + state.positions.values.reduce(0) { $0 + 160 + ($1.unsavedIDs?.count ?? 0) * 48 })
        func raw(_ text: String) { out.append(contentsOf: text.utf8) }
        raw("{\"generation\":")
        JSONString.append(generation, to: &out)
        raw(",\"updated_at\":\(state.updatedAt),\"sinks\":{")
        for (index, (name, position)) in state.positions.sorted(by: { $0.key < $1.key }).enumerated() {
            if index > 0 { raw(",") }
            JSONString.append(name, to: &out)
            position.appendScalars(to: &out)
            raw(",\"added\":{")
            for (offset, receipt) in (position.unsavedIDs ?? []).enumerated() {
                if offset > 0 { raw(",") }
                receipt.id.withUTF8 { JSONString.append(utf8: $0, to: &out) }
                out.append(UInt8(ascii: ":"))
                JSONString.append(integer: receipt.effectiveAt, to: &out)
            }
            raw("}}")
        }
        raw("}}")
        let checksum = checksum(out)
        raw(" " + String(repeating: "0", count: 16 - String(checksum, radix: 16).count) + String(checksum, radix: 16))
        out.append(0x0A)
        return out
    }

    /// Applies the lines of `bytes` that belong to `generation` to `state`, in order, up to
    /// the first line that is cut or fails its checksum. Returns how many were applied and
    /// how many bytes at the end were not whole lines (dropped).
    static func apply(_ bytes: [UInt8], to state: inout AuditState, generation: String) -> (
        applied: Int, dropped: Int
    ) {
        var applied = 0
        var start = 0
        let decoder = JSONDecoder()
        while start < bytes.count {
            guard let newline = bytes[start...].firstIndex(of: 0x0A),
                let space = bytes[start..<newline].lastIndex(of: 0x20),
                newline - space == 17,
                let checksum = UInt64(String(decoding: bytes[(space + 1)..<newline], as: UTF8.self), radix: 16),
                checksum == Self.checksum(bytes[start..<space]),
                let update = try? decoder.decode(Update.self, from: Data(bytes[start..<space]))
            else { return (applied, bytes.count - start) }
            start = newline + 1
            guard update.generation == generation else { continue }
            for (name, change) in update.sinks where state.positions[name] != nil {
                change.apply(to: &state.positions[name]!)
            }
            state.updatedAt = update.updatedAt
            applied += 1
        }
        return (applied, 0)
    }

    /// A line's checksum (`FNV1a.hash64`): enough to tell a whole line from a torn or stale one.
    static func checksum(_ bytes: some Collection<UInt8>) -> UInt64 { FNV1a.hash64(bytes) }

    struct Update: Decodable {
        let generation: String
        let updatedAt: Int64
        let sinks: [String: Change]

        enum CodingKeys: String, CodingKey {
            case generation, sinks
            case updatedAt = "updated_at"
        }
    }

    struct Change: Decodable {
        let completeBefore: Int64
        let recentSince: Int64
        let delivered: Int64
        let lastError: String?
        let lastErrorAt: Int64?
        let added: [String: Int64]

        enum CodingKeys: String, CodingKey {
            case completeBefore = "complete_before", recentSince = "recent_since", delivered, added
            case lastError = "last_error", lastErrorAt = "last_error_at"
        }

        /// The same steps as in memory: ids join `recent`, then a risen `recent_since` prunes.
        func apply(to position: inout SinkPosition) {
            position.completeBefore = completeBefore
            position.delivered = delivered
            position.lastError = lastError
            position.lastErrorAt = lastErrorAt
            for (id, at) in added { position.held.insert(HashedID(id), at: at) }
            if recentSince > position.recentSince {
                position.recentSince = recentSince
                position.held.removeAll(before: recentSince)
            }
        }
    }
}
