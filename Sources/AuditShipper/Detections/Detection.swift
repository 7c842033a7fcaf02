/// What the rules found in one event: the ids of the rules it matched (correlations
/// included), in the order they were read, and the highest of their levels.
public struct Detection: Sendable, Equatable {
    public let rules: [String]
    public let level: SigmaLevel

    public init(rules: [String], level: SigmaLevel) {
        self.rules = rules
        self.level = level
    }
}
