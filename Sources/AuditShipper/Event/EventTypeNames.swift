import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The event types read so far, each made into a `String` once per process and numbered.
///
/// A page's hundred events share a few dozen types; a type longer than fifteen bytes (most:
/// `service_account.created`) is a heap string, and making one per event was one of the four
/// allocations an event cost when read (perf, dense burst). Here an event's type is found by
/// its bytes and the string already made is shared. Keyed by the bytes as sent, not the text:
/// a type with escapes or invalid UTF-8 is decoded once, as the first time.
///
/// Each type held has a number (1 and up, in the order first read), kept in the event
/// (`AuditEvent.typeNumber`): the detection rules find a type's plan by it, without hashing
/// the type's name or taking a reference to it at every event (perf: that look-up, under
/// contention for the shared strings' reference counts, was half of what the rules cost).
final class EventTypeNames: Sendable {
    static let shared = EventTypeNames()

    /// A hostile or broken upstream could send a new type with every event: past this many
    /// the table stops growing, and new types are made per event and numbered 0, as without it.
    static let capacity = 1024

    struct Entry {
        let bytes: [UInt8]
        let text: String
        let number: UInt32
    }

    /// By the hash of the bytes; a second type with the same hash is neither shared nor numbered.
    private let table = Mutex<[Int: Entry]>([:])

    /// The type whose bytes are `raw` (a string's body between its quotes) and its number (0:
    /// none); `make` decodes it when it is not held.
    func name(_ raw: UnsafeBufferPointer<UInt8>, make: (UnsafeBufferPointer<UInt8>) -> String) -> (
        text: String, number: UInt32
    ) {
        var hasher = Hasher()
        hasher.combine(bytes: UnsafeRawBufferPointer(raw))
        let key = hasher.finalize()
        // One lock: a type not held yet is decoded under it once per process (and per event
        // only past `capacity` or on a hash shared with another type).
        return table.withLock { table in
            if let entry = table[key] { return Self.same(entry, raw) ? (entry.text, entry.number) : (make(raw), 0) }
            let text = make(raw)
            guard table.count < Self.capacity else { return (text, 0) }
            let number = UInt32(table.count + 1)
            table[key] = Entry(bytes: Array(raw), text: text, number: number)
            return (text, number)
        }
    }

    /// The number of `type` (an event made from text, not read from a page), held from now on.
    func number(of type: String) -> UInt32 {
        var bytes = type
        return bytes.withUTF8 { raw in name(raw) { _ in type }.number }
    }

    static func same(_ entry: Entry, _ raw: UnsafeBufferPointer<UInt8>) -> Bool {
        entry.bytes.withUnsafeBufferPointer {
            $0.count == raw.count && (raw.isEmpty || memcmp($0.baseAddress!, raw.baseAddress!, raw.count) == 0)
        }
    }
}
