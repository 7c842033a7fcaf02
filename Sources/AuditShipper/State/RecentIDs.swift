/// The ids a sink holds (id → `effective_at`), with their order in time kept beside them, so
/// that dropping the ones older than a floor costs the ids dropped, not the ids held.
///
/// During a dense burst a sink holds every id of its lookback (tens of thousands) and the floor
/// rises after every batch; filtering the whole set each time copied all of it per batch. Ids
/// arrive almost in time order (a cycle delivers oldest first), so the order is an array that
/// is appended to, and an id older than the newest (a late event, a receipt) is inserted where
/// it belongs.
struct RecentIDs: Sendable {
    private(set) var byHashedID: [HashedID: Int64] = [:]
    /// Ascending `effective_at` from `head`; entries before `head` are gone.
    private var byTime: [(at: Int64, id: HashedID)] = []
    private var head = 0

    init(_ ids: [String: Int64] = [:]) {
        for (id, at) in ids { byHashedID[HashedID(id)] = at }
        byTime = byHashedID.map { (at: $0.value, id: $0.key) }.sorted { $0.at < $1.at }
    }

    /// The ids as text (a copy of every one: for the state's readers and tests, not a cycle).
    var byID: [String: Int64] {
        Dictionary(uniqueKeysWithValues: byHashedID.lazy.map { ($0.key.text, $0.value) })
    }

    var count: Int { byHashedID.count }

    func contains(_ id: HashedID) -> Bool { byHashedID[id] != nil }

    /// Each id and its time, in no order, without making text of them.
    func forEach(_ body: (HashedID, Int64) -> Void) {
        for (id, at) in byHashedID { body(id, at) }
    }

    /// No held id was recorded at a later time than this (nil when none is held): O(1), where
    /// the largest of `byID`'s values costs every id. It may be later than the newest held (an
    /// id given an earlier time keeps its old entry until the floor passes it), never earlier.
    var newest: Int64? { head < byTime.count ? byTime[byTime.count - 1].at : nil }

    /// Adds `id` at `at` (a held id given another time keeps only the new one).
    mutating func insert(_ id: HashedID, at: Int64) {
        guard byHashedID.updateValue(at, forKey: id) != at else { return }
        if byTime.count == head || byTime[byTime.count - 1].at <= at {
            byTime.append((at, id))
        } else {
            var low = head
            var high = byTime.count
            while low < high {
                let middle = (low + high) / 2
                if byTime[middle].at <= at { low = middle + 1 } else { high = middle }
            }
            byTime.insert((at, id), at: low)
        }
    }

    /// Drops every id older than `floor`.
    mutating func removeAll(before floor: Int64) {
        while head < byTime.count, byTime[head].at < floor {
            let (at, id) = byTime[head]
            // An id whose time was rewritten is dropped by its current entry only (put back
            // here: one lookup for the common case instead of two).
            if let current = byHashedID.removeValue(forKey: id), current != at { byHashedID[id] = current }
            head += 1
        }
        // The dropped entries are reclaimed once they are half the array: amortized, each id
        // is moved a constant number of times.
        if head > 0, head * 2 >= byTime.count {
            byTime.removeFirst(head)
            head = 0
        }
    }
}
