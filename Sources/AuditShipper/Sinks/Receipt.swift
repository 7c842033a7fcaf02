/// An event a sink's destination is known to hold although its batch did not complete.
public struct Receipt: Sendable, Equatable {
    public var id: String
    public var effectiveAt: Int64

    public init(id: String, effectiveAt: Int64) {
        self.id = id
        self.effectiveAt = effectiveAt
    }
}
