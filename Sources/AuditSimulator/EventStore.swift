import Synchronization

/// The simulator's audit log: events kept oldest to newest, listed newest first.
///
/// Within one second the later-added event is listed first, like a database ordered by
/// `(effective_at desc, id desc)`. Pages cost O(limit + skipped) whatever the history size.
public final class EventStore: Sendable {
    struct Storage {
        var events: [SimulatedEvent] = []
        var positions: [String: Int] = [:]
        var nextSequence = 0
    }

    let storage = Mutex(Storage())
    /// Lists oldest first instead (`after` then pages towards newer events): OpenAI's order is
    /// not documented, and a client must not depend on it.
    public let oldestFirst = Mutex(false)

    public init() {}

    public var count: Int { storage.withLock { $0.events.count } }

    public func add(_ events: [SimulatedEvent]) {
        storage.withLock { storage in
            let appendOnly =
                events.first.map { first in
                    storage.events.last.map { $0.effectiveAt <= first.effectiveAt } ?? true
                } ?? true
            var sorted = appendOnly && zip(events, events.dropFirst()).allSatisfy { $0.effectiveAt <= $1.effectiveAt }
            for var event in events {
                event.sequence = storage.nextSequence
                storage.nextSequence += 1
                storage.events.append(event)
                if sorted { storage.positions[event.id] = storage.events.count - 1 }
            }
            if !sorted {
                storage.events.sort { ($0.effectiveAt, $0.sequence) < ($1.effectiveAt, $1.sequence) }
                storage.positions = Dictionary(
                    uniqueKeysWithValues: storage.events.enumerated().map { ($1.id, $0) })
                sorted = true
            }
        }
    }

    public func removeAll() {
        storage.withLock { $0 = Storage() }
    }

    public struct Page: Sendable {
        public var items: [SimulatedEvent]
        public var hasMore: Bool

        public init(items: [SimulatedEvent], hasMore: Bool) {
            self.items = items
            self.hasMore = hasMore
        }
    }

    /// One page for `query` as seen at time `now` (events with a later `visibleAt` are hidden).
    public func list(_ query: ListQuery, now: Double) throws(APIFailure) -> Page {
        try storage.withLock { storage throws(APIFailure) -> Page in
            let events = storage.events
            let (low, high) = query.bounds
            // [lower, upper): the positions whose effective_at lies in the bounds.
            let lower = Self.firstIndex(in: events) { $0.effectiveAt >= low }
            let upper = Self.firstIndex(in: events) { $0.effectiveAt > high }
            func position(_ id: String, _ name: String) throws(APIFailure) -> Int {
                guard let position = storage.positions[id] else {
                    throw .badRequest("Invalid '\(name)': no audit log with id '\(id)'.", param: name)
                }
                return position
            }
            var items: [SimulatedEvent] = []
            var hasMore = false
            func visit(_ index: Int) -> Bool {
                let event = events[index]
                guard event.visibleAt <= now, query.matches(event) else { return true }
                if items.count == query.limit {
                    hasMore = true
                    return false
                }
                items.append(event)
                return true
            }
            if let before = query.before {
                // The `limit` items just before `before` in list order, i.e. just newer.
                var index = max(lower, try position(before, "before") + 1)
                while index < upper, visit(index) { index += 1 }
                items.reverse()
            } else if oldestFirst.withLock({ $0 }) {
                var index = lower
                if let after = query.after { index = max(index, try position(after, "after") + 1) }
                while index < upper, visit(index) { index += 1 }
            } else {
                var index = upper - 1
                if let after = query.after { index = min(index, try position(after, "after") - 1) }
                while index >= lower, visit(index) { index -= 1 }
            }
            return Page(items: items, hasMore: hasMore)
        }
    }

    static func firstIndex(in events: [SimulatedEvent], where predicate: (SimulatedEvent) -> Bool) -> Int {
        var low = 0
        var high = events.count
        while low < high {
            let mid = (low + high) / 2
            if predicate(events[mid]) { high = mid } else { low = mid + 1 }
        }
        return low
    }

    /// The page as the API writes it: indented, one item per line.
    public static func body(_ page: Page) -> [UInt8] {
        var out = Array("{\n  \"object\": \"list\",\n  \"data\": [".utf8)
        for (index, item) in page.items.enumerated() {
            out.append(contentsOf: (index == 0 ? "\n    " : ",\n    ").utf8)
            out.append(contentsOf: item.json)
        }
        out.append(contentsOf: (page.items.isEmpty ? "],\n" : "\n  ],\n").utf8)
        let first = page.items.first.map { "\"\($0.id)\"" } ?? "null"
        let last = page.items.last.map { "\"\($0.id)\"" } ?? "null"
        out.append(
            contentsOf: "  \"first_id\": \(first),\n  \"last_id\": \(last),\n  \"has_more\": \(page.hasMore)\n}\n".utf8)
        return out
    }
}
