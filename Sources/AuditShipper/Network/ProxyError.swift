import Foundation

/// A proxy setting that cannot be used; names where it was set, never its password.
public struct ProxyError: Error, CustomStringConvertible, Sendable, Equatable {
    public let origin: String
    public let reason: String
    public var description: String { "\(origin) \(reason)" }
}
