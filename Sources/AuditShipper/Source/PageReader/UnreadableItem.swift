/// An item of a page's `data` that is JSON but not an event the cycle can place: no `id`, a
/// `type` that is not a string, an `effective_at` that is not a number or not a time after
/// 1970. It is set aside whole (`DeadLetterFile`) and the cycle goes on past it: one such
/// item must not stop every sink for good, and none is dropped unseen.
public struct UnreadableItem: Sendable, Equatable {
    /// Its place in the page's `data`.
    public let index: Int
    /// Its id, when it has one that reads as a string.
    public let id: String?
    /// What is wrong with it, in words (`its effective_at is not a number`).
    public let reason: String
    /// Its bytes as the API sent them, insignificant whitespace dropped (as an event's).
    public let json: [UInt8]

    public init(index: Int, id: String?, reason: String, json: [UInt8]) {
        self.index = index
        self.id = id
        self.reason = reason
        self.json = json
    }
}
