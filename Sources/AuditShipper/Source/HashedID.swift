/// An event's id with its hash worked out once, when the event is read.
///
/// A cycle looks every id up several times (the walk's repeat filter, each sink's `recent`:
/// a lookup, an insert, a removal when the lookback passes it). Hashing the id's bytes at each
/// of them, and comparing whole ids that only share a bucket, was a sixth of a dense burst's
/// CPU (perf): ids are long and alike (`audit_log-` and 24 more bytes). Here a lookup hashes
/// one integer, and two ids are compared byte by byte only when their hashes are equal.
/// The hash is Swift's own (seeded per process), so ids chosen to collide stay as hard to find
/// as for a `String`; it is never written anywhere.
public struct HashedID: Hashable, Sendable {
    public let text: String
    let hash: Int

    public init(_ text: String) {
        self.text = text
        hash = text.hashValue
    }

    public static func == (a: HashedID, b: HashedID) -> Bool { a.hash == b.hash && a.text == b.text }

    public func hash(into hasher: inout Hasher) { hasher.combine(hash) }
}
