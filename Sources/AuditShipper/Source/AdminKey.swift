/// The admin key. Printing it, logging it or interpolating it yields `[redacted]`.
public struct AdminKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public let value: String
    /// Where it came from (a path or a variable name), safe to print.
    public let origin: String

    public init(_ value: String, origin: String) {
        self.value = value
        self.origin = origin
    }

    public var description: String { "[redacted]" }
    public var debugDescription: String { "[redacted]" }

    /// Removes the key from text that came from elsewhere (an API message, an error).
    public func redact(_ text: String) -> String {
        guard value.count >= 8 else { return text }
        return text.replacingAll(value, with: "[redacted]")
    }
}
