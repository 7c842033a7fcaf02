/// A named search of a Sigma rule's `detection`: a map of fields (all must match), a list of
/// such maps (any of them), or keywords (any of them anywhere in the event's JSON).
struct SigmaSelection: Sendable {
    enum Kind: Sendable {
        case fields([[SigmaFieldMatcher]])
        case keywords([SigmaPattern])
    }

    let kind: Kind

    func matches(_ event: EventFields, json: String) -> Bool {
        switch kind {
        case .fields(let alternatives):
            return alternatives.contains { matchers in matchers.allSatisfy { $0.matches(event) } }
        case .keywords(let patterns):
            return patterns.contains { $0.matches(json) }
        }
    }

    /// The event types it admits, if every alternative names them (see `SigmaFieldMatcher.typePatterns`).
    var typePatterns: [SigmaPattern]? {
        guard case .fields(let alternatives) = kind else { return nil }
        var patterns: [SigmaPattern] = []
        for matchers in alternatives {
            guard let admitted = matchers.lazy.compactMap(\.typePatterns).first else { return nil }
            patterns += admitted
        }
        return patterns
    }

    /// Whether any line reads beyond `type` (then the event's JSON must be read).
    var readsFields: Bool {
        switch kind {
        case .keywords: true
        case .fields(let alternatives): alternatives.contains { $0.contains { $0.field != "type" } }
        }
    }
}
