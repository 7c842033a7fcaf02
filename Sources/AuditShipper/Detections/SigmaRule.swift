/// A Sigma detection rule, compiled once: its selections, its condition, and the event types
/// it can match, so that an event of another type is passed over on its `type` alone.
public final class SigmaRule: Sendable {
    public let id: String
    /// Sigma's optional `name`, which correlation rules may refer to instead of the id.
    public let name: String?
    public let title: String
    public let level: SigmaLevel
    public let tags: [String]
    /// Where it was read: `file:line`.
    public let origin: String
    let selections: [String: SigmaSelection]
    let condition: SigmaCondition
    /// `selections` in name order, and `condition` over their places in it.
    let ordered: [SigmaSelection]
    let compiled: SigmaCondition.Compiled
    /// The event types it can match; nil when its condition does not pin `type` down.
    let typePatterns: [SigmaPattern]?
    /// Whether its condition reads any field but `type` (else the JSON is not read for it).
    let readsFields: Bool
    /// Whether a selection is keywords, searched in the event's JSON text.
    let searchesText: Bool

    init(
        id: String, name: String?, title: String, level: SigmaLevel, tags: [String], origin: String,
        selections: [String: SigmaSelection], condition: SigmaCondition
    ) {
        self.id = id
        self.name = name
        self.title = title
        self.level = level
        self.tags = tags
        self.origin = origin
        self.selections = selections
        self.condition = condition
        let names = selections.keys.sorted()
        ordered = names.map { selections[$0]! }
        compiled = condition.compiled(names)
        typePatterns = Self.types(condition, selections)
        readsFields = selections.values.contains { $0.readsFields }
        searchesText = selections.values.contains { if case .keywords = $0.kind { true } else { false } }
    }

    /// The field paths its selections read.
    var paths: [[Substring]] {
        selections.values.flatMap { selection -> [[Substring]] in
            guard case .fields(let alternatives) = selection.kind else { return [] }
            return alternatives.flatMap { $0.map(\.path) }
        }
    }

    /// Whether an event of `type` can match at all.
    func admits(type: String) -> Bool {
        typePatterns?.contains { $0.matches(type) } ?? true
    }

    func matches(_ event: EventFields, json: String) -> Bool {
        // No cache of results: a condition names a selection once, nearly always, and a
        // dictionary per event cost more than the rare second look (perf).
        compiled.evaluate(ordered, event, json: json)
    }

    /// What types satisfying `condition` may have: for `and`, any part's; for `or`, every
    /// part's together; `not` pins nothing.
    static func types(_ condition: SigmaCondition, _ selections: [String: SigmaSelection]) -> [SigmaPattern]? {
        switch condition {
        case .selection(let name): selections[name]?.typePatterns
        case .not: nil
        case .and(let parts): parts.lazy.compactMap { types($0, selections) }.first
        case .or(let parts):
            parts.reduce([SigmaPattern]?.some([])) { found, part in
                guard let found, let more = types(part, selections) else { return nil }
                return found + more
            }
        }
    }
}
