/// A page that cannot be read; `offset` is the byte where reading stopped.
public struct MalformedPage: Error, CustomStringConvertible, Sendable {
    public let reason: String
    public let offset: Int
    public var description: String { "malformed page at byte \(offset): \(reason)" }
}
