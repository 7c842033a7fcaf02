/// A Sigma rule's `level`, lowest first: what a match raises an event's severity to.
public enum SigmaLevel: Int, Comparable, Sendable, CaseIterable, CustomStringConvertible {
    case informational, low, medium, high, critical

    public init?(name: String) {
        guard let level = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = level
    }

    public var description: String {
        switch self {
        case .informational: "informational"
        case .low: "low"
        case .medium: "medium"
        case .high: "high"
        case .critical: "critical"
        }
    }

    public static func < (lhs: SigmaLevel, rhs: SigmaLevel) -> Bool { lhs.rawValue < rhs.rawValue }
}
