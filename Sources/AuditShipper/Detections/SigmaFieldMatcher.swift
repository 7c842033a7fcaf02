import Foundation

/// One line of a Sigma selection: a field, its modifiers, and the values it is compared
/// with (any of them; all of them with `all`). A field that holds a list matches when one of
/// its elements does. `@unchecked`: only for `NSRegularExpression`, which is immutable once
/// made and safe to match with from several threads (Foundation says so); the rest is values.
struct SigmaFieldMatcher: @unchecked Sendable {
    enum Test {
        case pattern(SigmaPattern)
        case regex(NSRegularExpression)
        case cidr(CIDRBlock)
        /// The value `null`: the field is missing or null.
        case null
    }

    let field: String
    let path: [Substring]
    let tests: [Test]
    let all: Bool
    /// `field|exists: true|false`: whether the field is there at all, whatever its value.
    let exists: Bool?

    /// The modifiers this daemon knows; any other is a configuration error.
    static let modifiers: Set<String> = ["contains", "startswith", "endswith", "re", "cidr", "exists", "all", "cased"]

    /// `key` is the selection's key (`field|mod|mod`); `values` the text of each value, nil
    /// for a null. Throws a message in words for a modifier or value it cannot use.
    init(key: String, values: [String?]) throws(SigmaRuleError) {
        let parts = key.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        field = parts[0]
        guard !field.isEmpty else { throw SigmaRuleError("a selection key has no field name: '\(key)'") }
        path = FieldPaths.path(field)
        let modifiers = Array(parts.dropFirst())
        for modifier in modifiers where !Self.modifiers.contains(modifier) {
            throw SigmaRuleError(
                "unknown modifier '\(modifier)' in '\(key)' (known: \(Self.modifiers.sorted().joined(separator: ", ")))"
            )
        }
        let set = Set(modifiers)
        all = set.contains("all")
        let shapes = set.intersection(["contains", "startswith", "endswith"])
        if set.contains("exists") {
            guard set == ["exists"], values.count == 1, let value = values[0]?.lowercased(),
                value == "true" || value == "false"
            else { throw SigmaRuleError("'\(key)' takes one value, true or false, and no other modifier") }
            exists = value == "true"
            tests = []
            return
        }
        exists = nil
        if set.contains("re") || set.contains("cidr") {
            guard shapes.isEmpty, !set.contains("cased"), !(set.contains("re") && set.contains("cidr")) else {
                throw SigmaRuleError("'\(key)': re and cidr take no other modifier but all")
            }
        }
        if shapes.count > 1 { throw SigmaRuleError("'\(key)': contains, startswith and endswith exclude one another") }
        var tests: [Test] = []
        for value in values {
            guard let value else {
                guard set.isEmpty || set == ["all"] else {
                    throw SigmaRuleError("'\(key)': null takes no modifier")
                }
                tests.append(.null)
                continue
            }
            if set.contains("re") {
                do {
                    tests.append(.regex(try NSRegularExpression(pattern: value)))
                } catch {
                    throw SigmaRuleError("'\(key)': '\(value)' is not a regular expression")
                }
            } else if set.contains("cidr") {
                guard let block = CIDRBlock(value) else {
                    throw SigmaRuleError("'\(key)': '\(value)' is not a network in CIDR notation")
                }
                tests.append(.cidr(block))
            } else {
                let text =
                    shapes.contains("contains")
                    ? "*\(value)*"
                    : shapes.contains("startswith") ? "\(value)*" : shapes.contains("endswith") ? "*\(value)" : value
                tests.append(.pattern(SigmaPattern(text, cased: set.contains("cased"))))
            }
        }
        guard !tests.isEmpty else { throw SigmaRuleError("'\(key)' has no value to compare with") }
        self.tests = tests
    }

    func matches(_ event: EventFields) -> Bool {
        if let exists { return event.exists(path) == exists }
        let values = event.values(at: path)
        let test = { (test: Test) -> Bool in
            if case .null = test {
                return values.allSatisfy { if case .null = $0 { true } else { false } }
            }
            return values.contains { value in
                guard let text = value.text else { return false }
                switch test {
                case .pattern(let pattern): return pattern.matches(text)
                case .regex(let regex):
                    return regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
                case .cidr(let block): return block.contains(text)
                case .null: return false
                }
            }
        }
        return all ? tests.allSatisfy(test) : tests.contains(where: test)
    }

    /// The event types this line admits, when it is `type` compared with plain values: the
    /// patterns, so an event of another type is passed over without reading its JSON.
    var typePatterns: [SigmaPattern]? {
        guard field == "type", exists == nil, !all else { return nil }
        var patterns: [SigmaPattern] = []
        for test in tests {
            guard case .pattern(let pattern) = test else { return nil }
            patterns.append(pattern)
        }
        return patterns
    }
}

/// What is wrong with a rule, in words; the reader adds the file, line and rule id.
struct SigmaRuleError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}
