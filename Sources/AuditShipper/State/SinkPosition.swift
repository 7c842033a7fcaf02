/// How far one sink has been delivered: the one type for a sink's position.
///
/// Invariants, each kept where the position moves (`accept`, `complete`, `prune`):
/// - every event visible upstream with `effective_at < completeBefore` was delivered to the sink;
/// - `recent` holds every id delivered to it with `effective_at >= recentSince`;
/// - no window of this sink starts before `recentSince`, so an id that is not in `recent` and
///   not older than the window start was never delivered. `recentSince` only ever rises: a
///   lookback raised later re-reads no further back than the ids it still knows (nothing is
///   sent twice), and reaches its full length as `completeBefore` moves on.
///
/// It moves in memory (`PollCycle.deliver`) and reaches disk after each batch through
/// `PollCycle.write` → `StateWriter.file` → `StateStore.save`, which writes it with
/// `appendScalars` (the state file, `AuditState.encoded`, and its update log alike). A shared
/// sink's position goes to PostgreSQL instead (`PollCycle.recordShared` →
/// `Coordination.record`), written by `appendWhole` too. It is read back by `init(from:)`;
/// there is no second encoder.
public struct SinkPosition: Decodable, Sendable, Equatable {
    public var completeBefore: Int64
    public var recentSince: Int64
    /// Delivered id → its `effective_at`. Replacing it whole makes the next write a full one.
    public var recent: [String: Int64] {
        get { held.byID }
        set {
            held = RecentIDs(newValue)
            unsavedIDs = nil
        }
    }
    var held: RecentIDs
    /// The ids `accept` and `hold` added since the position was last written, so the state
    /// store can append them instead of rewriting every id (`StateUpdateLog`); nil when
    /// `recent` was replaced whole, which only a full write records. Not written itself, and
    /// not part of equality.
    var unsavedIDs: [(id: HashedID, effectiveAt: Int64)]? = []
    /// Events delivered to this sink over the state's life (informational).
    public var delivered: Int64
    /// Why the sink's last delivery failed, and when (Unix seconds); nil once it delivers again.
    public var lastError: String?
    public var lastErrorAt: Int64?

    /// A sink that starts at `start`: nothing before it will be delivered.
    public init(start: Int64) {
        completeBefore = start
        recentSince = start
        held = RecentIDs()
        delivered = 0
    }

    /// Where this sink's next window starts: `lookback` before `completeBefore`, never before
    /// the ids it knows.
    public func windowStart(lookback: Int64) -> Int64 {
        max(recentSince, completeBefore - lookback)
    }

    /// Does this sink still need `event`? Not if it holds the id, nor if the event is older
    /// than its window (delivered long ago, or before its start). Always by the id: an event
    /// the API lists again with another `effective_at` is still the one delivered.
    public func needs(_ event: AuditEvent, windowStart: Int64) -> Bool {
        event.effectiveAt >= windowStart && !held.contains(event.hashedID)
    }

    /// The newest `effective_at` among the ids held, or later (see `RecentIDs.newest`).
    var newestHeld: Int64? { held.newest }

    /// Records `events` as delivered. `through` is the newest second of the batch they came
    /// from: every event of the walk older than it is now held by the sink (the walk is
    /// delivered oldest first, and what the sink was not given it already had), so T may move
    /// that far. A restart then re-reads less, and `recent` stays one lookback long.
    public mutating func accept(_ events: some Sequence<AuditEvent>, through: Int64?) {
        for event in events {
            held.insert(event.hashedID, at: event.effectiveAt)
            unsavedIDs?.append((event.hashedID, event.effectiveAt))
            delivered += 1
        }
        if let through { completeBefore = max(completeBefore, through) }
        lastError = nil
        lastErrorAt = nil
    }

    /// Adds ids the destination is known to hold (a batch cut short); T does not move, since
    /// the rest of that batch is not delivered. Ids below `recentSince` are already covered.
    public mutating func hold(_ receipts: [Receipt]) -> Int {
        var added = 0
        for receipt in receipts where receipt.effectiveAt >= recentSince {
            let id = HashedID(receipt.id)
            guard !held.contains(id) else { continue }
            held.insert(id, at: receipt.effectiveAt)
            unsavedIDs?.append((id, receipt.effectiveAt))
            delivered += 1
            added += 1
        }
        return added
    }

    /// A slice is complete for this sink: everything visible before `end` is delivered.
    public mutating func complete(before end: Int64) {
        completeBefore = max(completeBefore, end)
    }

    /// Forgets ids that no window can reach again; a shorter lookback prunes at once.
    public mutating func prune(lookback: Int64) {
        let floor = completeBefore - lookback
        guard floor > recentSince else { return }
        recentSince = floor
        // Not a replacement: a reader of the state drops the same ids when `recentSince` rises.
        held.removeAll(before: floor)
    }

    /// `:{"complete_before":…,"last_error_at":…` (the object left open), as the state file
    /// and its update log both write a position's scalars.
    func appendScalars(to out: inout [UInt8]) {
        out.append(contentsOf: ":{\"complete_before\":\(completeBefore),\"recent_since\":\(recentSince)".utf8)
        out.append(contentsOf: ",\"delivered\":\(delivered),\"last_error\":".utf8)
        if let lastError { JSONString.append(lastError, to: &out) } else { out.append(contentsOf: "null".utf8) }
        out.append(contentsOf: ",\"last_error_at\":\(lastErrorAt.map(String.init) ?? "null")".utf8)
    }

    /// `:{…,"recent":{…}}`: the whole position, as the state file (`AuditState.encoded`) and
    /// a group's shared positions in PostgreSQL (`PostgresCoordination`) keep it.
    func appendWhole(to out: inout [UInt8]) {
        appendScalars(to: &out)
        out.append(contentsOf: ",\"recent\":{".utf8)
        var first = true
        held.forEach { id, effectiveAt in
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            id.withUTF8 { JSONString.append(utf8: $0, to: &out) }
            out.append(UInt8(ascii: ":"))
            JSONString.append(integer: effectiveAt, to: &out)
        }
        out.append(contentsOf: "}}".utf8)
    }

    /// The position is on disk: nothing of it is left to append.
    mutating func markWritten() {
        unsavedIDs = []
    }

    public mutating func fail(_ reason: String, at now: Int64) {
        lastError = reason
        lastErrorAt = now
    }

    enum CodingKeys: String, CodingKey {
        case completeBefore = "complete_before", recentSince = "recent_since", recent, delivered
        case lastError = "last_error", lastErrorAt = "last_error_at"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        completeBefore = try container.decode(Int64.self, forKey: .completeBefore)
        recentSince = try container.decode(Int64.self, forKey: .recentSince)
        held = RecentIDs(try container.decode([String: Int64].self, forKey: .recent))
        delivered = try container.decode(Int64.self, forKey: .delivered)
        lastError = try container.decodeIfPresent(String.self, forKey: .lastError)
        lastErrorAt = try container.decodeIfPresent(Int64.self, forKey: .lastErrorAt)
    }

    public static func == (a: SinkPosition, b: SinkPosition) -> Bool {
        a.completeBefore == b.completeBefore && a.recentSince == b.recentSince && a.held.byHashedID == b.held.byHashedID
            && a.delivered == b.delivered && a.lastError == b.lastError && a.lastErrorAt == b.lastErrorAt
    }
}
