#if canImport(Glibc)
    import Glibc
#endif

/// An event's id: its UTF-8 bytes, held in the value itself, with their hash worked out once.
///
/// A cycle looks every id up several times (the walk's repeat filter, each sink's `recent`:
/// a lookup, an insert, a removal when the lookback passes it). Hashing the id's bytes at each
/// of them, and comparing whole ids that only share a bucket, was a sixth of a dense burst's
/// CPU (perf): ids are long and alike (`audit_log-` and 24 more bytes). Here a lookup hashes
/// one integer, and two ids are compared byte by byte only when their hashes are equal.
///
/// An id of up to `inlineCapacity` bytes (the API's are 34) is kept inside the value rather
/// than in a `String`: making one per event was one of the allocations an event read cost,
/// and a `String` in every table entry a reference count per copy (perf, dense burst). Longer
/// ids are kept in an array. Ids are compared as bytes, as the API's opaque strings are; the
/// page reader makes invalid UTF-8 valid first, so an id read back from the state (text)
/// equals the id read from a page.
///
/// The hash is Swift's own (seeded per process), so ids chosen to collide stay as hard to find
/// as for a `String`; it is never written anywhere.
public struct HashedID: Hashable, Sendable, CustomStringConvertible {
    typealias Inline = InlineArray<40, UInt8>
    static let inlineCapacity = Inline.count

    let hash: Int
    private let small: Inline
    /// The bytes of an id longer than `inlineCapacity`; nil when `small` holds them.
    private let large: [UInt8]?
    private let smallCount: UInt8

    public init(_ text: String) {
        var text = text
        self = text.withUTF8 { HashedID(utf8: $0) }
    }

    /// The id whose UTF-8 bytes are `bytes` (valid UTF-8: see the type's note).
    init(utf8 bytes: UnsafeBufferPointer<UInt8>) {
        var hasher = Hasher()
        hasher.combine(bytes: UnsafeRawBufferPointer(bytes))
        hash = hasher.finalize()
        var small = Inline(repeating: 0)
        if bytes.count <= Self.inlineCapacity {
            withUnsafeMutableBytes(of: &small) { $0.copyMemory(from: UnsafeRawBufferPointer(bytes)) }
            large = nil
            smallCount = UInt8(bytes.count)
        } else {
            large = Array(bytes)
            smallCount = 0
        }
        self.small = small
    }

    public var count: Int { large?.count ?? Int(smallCount) }
    public var isEmpty: Bool { count == 0 }

    /// The id's bytes, valid only inside `body`.
    public func withUTF8<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        if let large { return try large.withUnsafeBufferPointer(body) }
        let count = Int(smallCount)
        return try withUnsafeBytes(of: small) { raw in
            try body(UnsafeBufferPointer(start: raw.baseAddress!.assumingMemoryBound(to: UInt8.self), count: count))
        }
    }

    /// The id as text (a new `String`: for formats, logs and the state's readers, not lookups).
    public var text: String { withUTF8 { String(decoding: $0, as: UTF8.self) } }
    public var description: String { text }

    public static func == (a: HashedID, b: HashedID) -> Bool {
        guard a.hash == b.hash, a.count == b.count else { return false }
        return a.withUTF8 { x in b.withUTF8 { y in memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 } }
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(hash) }
}
