import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The event types read so far, each made into a `String` once per process.
///
/// A page's hundred events share a few dozen types; a type longer than fifteen bytes (most:
/// `service_account.created`) is a heap string, and making one per event was one of the four
/// allocations an event cost when read (perf, dense burst). Here an event's type is found by
/// its bytes and the string already made is shared. Keyed by the bytes as sent, not the text:
/// a type with escapes or invalid UTF-8 is decoded once, as the first time.
final class EventTypeNames: Sendable {
    static let shared = EventTypeNames()

    /// A hostile or broken upstream could send a new type with every event: past this many
    /// the table stops growing and new types are made per event, as without it.
    static let capacity = 1024

    struct Entry {
        let bytes: [UInt8]
        let text: String
    }

    /// By the hash of the bytes; a second type with the same hash is not shared.
    private let table = Mutex<[Int: Entry]>([:])

    /// The type whose bytes are `raw` (a string's body between its quotes); `make` decodes it
    /// when it is not held.
    func name(_ raw: UnsafeBufferPointer<UInt8>, make: (UnsafeBufferPointer<UInt8>) -> String) -> String {
        // Fifteen bytes or fewer fit in the string itself: nothing to share.
        guard raw.count > 15 else { return make(raw) }
        var hasher = Hasher()
        hasher.combine(bytes: UnsafeRawBufferPointer(raw))
        let key = hasher.finalize()
        if let found = table.withLock({ $0[key] }) {
            let same = found.bytes.withUnsafeBufferPointer {
                $0.count == raw.count && memcmp($0.baseAddress!, raw.baseAddress!, raw.count) == 0
            }
            return same ? found.text : make(raw)
        }
        let text = make(raw)
        table.withLock {
            if $0.count < Self.capacity { $0[key] = Entry(bytes: Array(raw), text: text) }
        }
        return text
    }
}
