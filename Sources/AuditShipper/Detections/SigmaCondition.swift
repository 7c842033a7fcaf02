/// A Sigma rule's `condition`, parsed: selection names joined by `and`, `or`, `not` and
/// parentheses (`not` binds tightest, then `and`), and `1 of` / `all of` a name pattern
/// (`sel_*`) or `them` (every selection whose name does not begin with `_`).
indirect enum SigmaCondition: Sendable, Equatable {
    case selection(String)
    case not(SigmaCondition)
    case and([SigmaCondition])
    case or([SigmaCondition])

    /// Parses `text` against the rule's selection names; names and patterns that match none are errors.
    static func parse(_ text: String, selections: Set<String>) throws(SigmaRuleError) -> SigmaCondition {
        var parser = Parser(tokens: tokenize(text), selections: selections, text: text)
        let condition = try parser.expression()
        if let extra = parser.peek {
            throw SigmaRuleError("condition '\(text)': unexpected '\(extra)'")
        }
        return condition
    }

    /// The condition over the selections' places in `order`, as a rule evaluates it at each
    /// event: no name is looked up and no closure is made per event (perf).
    func compiled(_ order: [String]) -> Compiled {
        switch self {
        case .selection(let name): .selection(order.firstIndex(of: name) ?? -1)
        case .not(let inner): .not(inner.compiled(order))
        case .and(let parts): .and(parts.map { $0.compiled(order) })
        case .or(let parts): .or(parts.map { $0.compiled(order) })
        }
    }

    /// `SigmaCondition` with each selection named by its index in the rule's list of them.
    indirect enum Compiled: Sendable {
        case selection(Int)
        case not(Compiled)
        case and([Compiled])
        case or([Compiled])

        func evaluate(_ selections: [SigmaSelection], _ event: EventFields, json: String) -> Bool {
            switch self {
            case .selection(let index):
                return selections.indices.contains(index) && selections[index].matches(event, json: json)
            case .not(let inner): return !inner.evaluate(selections, event, json: json)
            case .and(let parts):
                for part in parts where !part.evaluate(selections, event, json: json) { return false }
                return true
            case .or(let parts):
                for part in parts where part.evaluate(selections, event, json: json) { return true }
                return false
            }
        }
    }

    static func tokenize(_ text: String) -> [String] {
        var tokens: [String] = []
        var word = ""
        for character in text {
            if character == "(" || character == ")" || character.isWhitespace {
                if !word.isEmpty { tokens.append(word) }
                word = ""
                if !character.isWhitespace { tokens.append(String(character)) }
            } else {
                word.append(character)
            }
        }
        if !word.isEmpty { tokens.append(word) }
        return tokens
    }

    struct Parser {
        var tokens: [String]
        var index = 0
        let selections: Set<String>
        let text: String

        init(tokens: [String], selections: Set<String>, text: String) {
            self.tokens = tokens
            self.selections = selections
            self.text = text
        }

        var peek: String? { index < tokens.count ? tokens[index] : nil }

        mutating func next() throws(SigmaRuleError) -> String {
            guard let token = peek else { throw SigmaRuleError("condition '\(text)' ends too early") }
            index += 1
            return token
        }

        mutating func expression() throws(SigmaRuleError) -> SigmaCondition {
            var parts = [try term()]
            while peek?.lowercased() == "or" {
                index += 1
                parts.append(try term())
            }
            return parts.count == 1 ? parts[0] : .or(parts)
        }

        mutating func term() throws(SigmaRuleError) -> SigmaCondition {
            var parts = [try factor()]
            while peek?.lowercased() == "and" {
                index += 1
                parts.append(try factor())
            }
            return parts.count == 1 ? parts[0] : .and(parts)
        }

        mutating func factor() throws(SigmaRuleError) -> SigmaCondition {
            let token = try next()
            switch token.lowercased() {
            case "not": return .not(try factor())
            case "(":
                let inner = try expression()
                guard try next() == ")" else { throw SigmaRuleError("condition '\(text)': a '(' is not closed") }
                return inner
            case "1", "any", "all":
                guard peek?.lowercased() == "of" else { break }
                index += 1
                let target = try next()
                let names: [String]
                if target.lowercased() == "them" {
                    names = selections.filter { !$0.hasPrefix("_") }.sorted()
                } else {
                    let pattern = SigmaPattern(target, cased: true)
                    names = selections.filter { pattern.matches($0) }.sorted()
                }
                guard !names.isEmpty else {
                    throw SigmaRuleError("condition '\(text)': '\(target)' names no selection")
                }
                let parts = names.map(SigmaCondition.selection)
                return token.lowercased() == "all" ? .and(parts) : .or(parts)
            case ")", "and", "or", "of":
                throw SigmaRuleError("condition '\(text)': unexpected '\(token)'")
            default: break
            }
            guard selections.contains(token) else {
                throw SigmaRuleError(
                    "condition '\(text)': no selection named '\(token)' (the detection has \(selections.sorted().joined(separator: ", ")))"
                )
            }
            return .selection(token)
        }
    }
}
