import Synchronization

/// A failure the simulator serves instead of the next audit log page(s).
public enum Fault: Sendable, Equatable {
    /// An HTTP error status with the API's error body; `retryAfter` is sent as is.
    case status(Int, retryAfter: String?)
    /// The connection is reset (RST) before any response.
    case reset
    /// The real page, after a delay.
    case slow(milliseconds: Int)
    /// A 200 whose body is broken.
    case malformed(MalformedKind)
    /// The real page: a placeholder, so that a later fault hits a later request.
    case pass
    /// The first page of the query, whatever its `after`: a cursor that cycles back.
    case rewind
    /// A 200 streamed in chunks without `Content-Length`: `bytes` of a page that never ends.
    case huge(bytes: Int)
}

public enum MalformedKind: String, Sendable, CaseIterable {
    /// The page cut in the middle.
    case truncated
    /// An HTML error page with status 200.
    case notJSON = "not_json"
    /// A JSON object without `data`.
    case noData = "no_data"
    /// `has_more: true` with no events and no `last_id`: nothing to continue after.
    case emptyHasMore = "empty_has_more"
}

/// Faults waiting to be served, in order, each for a number of requests.
public final class FaultQueue: Sendable {
    let queue = Mutex<[(fault: Fault, remaining: Int)]>([])

    public init() {}

    public func enqueue(_ fault: Fault, count: Int = 1) {
        guard count > 0 else { return }
        queue.withLock { $0.append((fault, count)) }
    }

    public func next() -> Fault? {
        queue.withLock { queue in
            guard !queue.isEmpty else { return nil }
            let fault = queue[0].fault
            queue[0].remaining -= 1
            if queue[0].remaining == 0 { queue.removeFirst() }
            return fault
        }
    }

    public var pending: Int { queue.withLock { $0.reduce(0) { $0 + $1.remaining } } }

    public func removeAll() { queue.withLock { $0.removeAll() } }
}

/// What the simulator was asked, for tests that check the wire form.
public final class RequestLog: Sendable {
    public struct Entry: Sendable {
        public let uri: String
        public let status: Int
        public let organization: String?
    }

    let entries = Mutex<[Entry]>([])
    static let limit = 100_000

    public init() {}

    func record(_ entry: Entry) {
        entries.withLock {
            if $0.count >= Self.limit { $0.removeFirst($0.count / 2) }
            $0.append(entry)
        }
    }

    public var all: [Entry] { entries.withLock { $0 } }

    public func removeAll() { entries.withLock { $0.removeAll() } }
}
