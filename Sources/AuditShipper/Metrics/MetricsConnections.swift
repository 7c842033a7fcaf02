import NIOCore
import Synchronization

/// Who holds the metrics endpoint's connections: at most `limit` in all and `perPeer` from one
/// address. A newcomer that finds no room takes the place of the connection that has waited
/// longest for its request head (from its own address first), so peers that send slowly yield
/// to one that asks: sixteen slowloris peers cannot keep a scrape out, and a "daemon down"
/// alert does not fire for them. A connection waits for its head from when it opens and again
/// after each response (keep-alive).
final class MetricsConnections: Sendable {
    struct Entry {
        let channel: any Channel
        let peer: String
        /// Since when it waits for a request head; nil while a request is answered.
        var waitingSince: NIODeadline?
    }

    let limit: Int
    let perPeer: Int
    let entries = Mutex<[ObjectIdentifier: Entry]>([:])

    init(limit: Int, perPeer: Int) {
        self.limit = limit
        self.perPeer = perPeer
    }

    /// Admits `channel` from `peer`, making room if a waiting connection can give it up: the
    /// connection to close for it, if any; nil when there is no room (close the newcomer).
    func admit(_ channel: any Channel, peer: String) -> (admitted: Bool, evicted: (any Channel)?) {
        entries.withLock { entries in
            func longestWaiting(_ candidates: some Sequence<(key: ObjectIdentifier, value: Entry)>) -> ObjectIdentifier?
            {
                candidates.compactMap { entry in entry.value.waitingSince.map { (entry.key, $0) } }
                    .min { $0.1 < $1.1 }?.0
            }
            var evicted: (any Channel)?
            let fromPeer = entries.filter { $0.value.peer == peer }
            if fromPeer.count >= perPeer || entries.count >= limit {
                let candidates = fromPeer.count >= perPeer ? fromPeer : entries
                guard let victim = longestWaiting(candidates) else { return (false, nil) }
                evicted = entries.removeValue(forKey: victim)?.channel
            }
            entries[ObjectIdentifier(channel)] = Entry(channel: channel, peer: peer, waitingSince: .now())
            return (true, evicted)
        }
    }

    /// `channel` now waits for a request head (true) or has one to answer (false).
    func waiting(_ channel: any Channel, _ isWaiting: Bool) {
        entries.withLock { $0[ObjectIdentifier(channel)]?.waitingSince = isWaiting ? .now() : nil }
    }

    func remove(_ channel: any Channel) {
        _ = entries.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }
}
