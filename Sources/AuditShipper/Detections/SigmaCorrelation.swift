/// A Sigma correlation rule: a threshold over the events that matched other rules, counted
/// per group (`group-by`) within `timespan` of `effective_at` (never of arrival: a catch-up
/// over last week counts last week's bursts). `event_count` counts the events,
/// `value_count` the distinct values of one field among them.
public struct SigmaCorrelation: Sendable {
    public enum Kind: Sendable, Equatable {
        case eventCount
        case valueCount(field: String)
    }

    /// `gte`, `gt` or `eq`: a stream has no end at which `lt` or `lte` could be judged.
    public enum Comparison: String, Sendable, CaseIterable {
        case gte, gt, eq

        func holds(_ count: Int, _ threshold: Int) -> Bool {
            switch self {
            case .gte: count >= threshold
            case .gt: count > threshold
            case .eq: count == threshold
            }
        }
    }

    public let id: String
    public let name: String?
    public let title: String
    public let level: SigmaLevel
    public let origin: String
    public let kind: Kind
    /// The rules it counts, by id or name.
    public let rules: [String]
    public let groupBy: [String]
    /// Seconds of `effective_at`.
    public let timespan: Int64
    public let comparison: Comparison
    public let threshold: Int
    /// Whether the rules it counts also mark events on their own (Sigma's `generate`).
    public let generate: Bool

    /// `value_count`'s field and the `group-by` fields as paths, split once (read at each event counted).
    let valuePath: [Substring]?
    let groupPaths: [[Substring]]

    init(
        id: String, name: String?, title: String, level: SigmaLevel, origin: String, kind: Kind, rules: [String],
        groupBy: [String], timespan: Int64, comparison: Comparison, threshold: Int, generate: Bool
    ) {
        self.id = id
        self.name = name
        self.title = title
        self.level = level
        self.origin = origin
        self.kind = kind
        self.rules = rules
        self.groupBy = groupBy
        self.timespan = timespan
        self.comparison = comparison
        self.threshold = threshold
        self.generate = generate
        if case .valueCount(let field) = kind {
            valuePath = FieldPaths.path(field)
        } else {
            valuePath = nil
        }
        groupPaths = groupBy.map(FieldPaths.path)
    }

    /// The field paths it reads: its groups' and its value's.
    var paths: [[Substring]] { groupPaths + [valuePath].compactMap { $0 } }
}
