/// One audit log item: its own bytes, forwarded unchanged, and the fields the cycle needs.
///
/// The event is never re-encoded: its JSON is the item exactly as the API sent it, with only
/// insignificant whitespace removed, so unknown fields and types reach every sink whole.
///
/// A class: an event is passed through pages, slices, sorts and batches, and one reference
/// count per copy costs less than three (perf). The JSON bytes live in the object itself,
/// after its fields (allocated by `ManagedBufferPointer`): an event read costs one allocation
/// for both where an array beside it cost two, which a dense burst pays 200,000 times (perf,
/// `make bench`). The class declares no stored properties (the buffer's layout is the fields,
/// then the bytes), and neither is changed once made.
public final class AuditEvent: Sendable {
    struct Fields {
        let hashedID: HashedID
        let type: String
        /// The type's number (`EventTypeNames`), 0 for none.
        let typeNumber: UInt32
        let effectiveAt: Int64
        /// How many bytes of JSON follow.
        let count: Int
        /// What the detection rules found in it (`marked`); nil for most events.
        var detection: Detection? = nil
    }

    private var storage: ManagedBufferPointer<Fields, UInt8> { ManagedBufferPointer(unsafeBufferObject: self) }

    /// An event whose JSON is `count` bytes that `write` puts in place (it must write all of
    /// them).
    static func make(
        id: HashedID, type: String, typeNumber: UInt32, effectiveAt: Int64, count: Int,
        write: (UnsafeMutableBufferPointer<UInt8>) -> Void
    ) -> AuditEvent {
        let storage = ManagedBufferPointer<Fields, UInt8>(
            bufferClass: AuditEvent.self, minimumCapacity: count
        ) { _, _ in
            Fields(hashedID: id, type: type, typeNumber: typeNumber, effectiveAt: effectiveAt, count: count)
        }
        storage.withUnsafeMutablePointerToElements { write(UnsafeMutableBufferPointer(start: $0, count: count)) }
        return unsafeDowncast(storage.buffer, to: AuditEvent.self)
    }

    public static func make(id: String, type: String, effectiveAt: Int64, json: some Collection<UInt8>) -> AuditEvent {
        make(
            id: HashedID(id), type: type, typeNumber: EventTypeNames.shared.number(of: type), effectiveAt: effectiveAt,
            count: json.count
        ) {
            _ = $0.initialize(from: json)
        }
    }

    deinit {
        // The bytes need no deinitializing; the fields hold strings.
        _ = storage.withUnsafeMutablePointerToHeader { $0.deinitialize(count: 1) }
    }

    /// The id as text (made when asked: the cycle itself uses `hashedID`).
    public var id: String { storage.header.hashedID.text }
    /// The id's bytes and their hash, for the cycle's many lookups.
    public var hashedID: HashedID { storage.header.hashedID }
    public var type: String { storage.header.type }
    /// The type's number (`EventTypeNames`), 0 for none. Read in place: the whole header is
    /// not copied (nor its strings retained) to find it.
    var typeNumber: UInt32 { storage.withUnsafeMutablePointerToHeader { $0.pointee.typeNumber } }
    /// Unix seconds (the API's resolution is one second).
    public var effectiveAt: Int64 { storage.header.effectiveAt }
    /// The length of the compact JSON.
    public var jsonCount: Int { storage.header.count }

    /// What the detection rules found (`Detector`): every sink says it in its own terms.
    public var detection: Detection? { storage.header.detection }

    /// This event marked with `detection`: a copy, so that an event stays as it was made
    /// wherever it is shared; only events a rule matched pay for it.
    public func marked(_ detection: Detection) -> AuditEvent {
        let header = storage.header
        let marked = withJSON { json in
            AuditEvent.make(
                id: header.hashedID, type: header.type, typeNumber: header.typeNumber, effectiveAt: header.effectiveAt,
                count: json.count
            ) {
                _ = $0.initialize(from: json)
            }
        }
        marked.storage.withUnsafeMutablePointerToHeader { $0.pointee.detection = detection }
        return marked
    }

    /// The compact JSON of the whole item, UTF-8, no newline; valid only inside `body`.
    public func withJSON<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        let count = storage.header.count
        return try storage.withUnsafeMutablePointerToElements { try body(UnsafeBufferPointer(start: $0, count: count)) }
    }

    /// A copy of the compact JSON (`withJSON` reads it in place).
    public var json: [UInt8] { withJSON { Array($0) } }

    public var jsonString: String { withJSON { String(decoding: $0, as: UTF8.self) } }
}
