import Foundation
import Yams

/// Reads Sigma rule files (`detections.rules`: files, or folders of `*.yml` and `*.yaml`),
/// each of one or more YAML documents, into compiled rules and correlations. Whatever it
/// cannot use is a configuration error naming the file, the line and the rule's id.
///
/// A rule whose `logsource` names another product than `openai` (or another service than
/// `audit`) is not for this log and is left out, so a folder shared with other rules works.
public struct SigmaRuleReader {
    public struct Rules: Sendable {
        public var rules: [SigmaRule] = []
        public var correlations: [SigmaCorrelation] = []
        /// Rules left out for their `logsource`, by origin.
        public var otherSources: [String] = []
    }

    public init() {}

    /// Every rule in `paths`, folders read in name order.
    public func read(paths: [String]) throws(ConfigurationError) -> Rules {
        var rules = Rules()
        for path in paths {
            for file in try files(path) { try read(file: file, into: &rules) }
        }
        try check(rules)
        return rules
    }

    func files(_ path: String) throws(ConfigurationError) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .invalid(origin: path, path: "detections.rules", message: "no such file or folder")
        }
        guard isDirectory.boolValue else { return [path] }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw .invalid(origin: path, path: "detections.rules", message: "cannot read the folder")
        }
        return names.filter { $0.hasSuffix(".yml") || $0.hasSuffix(".yaml") }.sorted().map { path + "/" + $0 }
    }

    func read(file: String, into rules: inout Rules) throws(ConfigurationError) {
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw .invalid(origin: file, path: "detections.rules", message: "cannot read the rule file")
        }
        try read(yaml: text, file: file, into: &rules)
    }

    /// The documents of one file's text.
    public func read(yaml: String, file: String, into rules: inout Rules) throws(ConfigurationError) {
        var documents: [ConfigNode] = []
        do {
            let parser = try Parser(yaml: yaml)
            try withExtendedLifetime(parser) {
                while let root = try parser.nextRoot() { documents.append(try ConfigNode(root, file: file)) }
            }
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw .syntax(file: file, message: ConfigurationLoader.describe(error))
        }
        for document in documents {
            guard case .map(let pairs) = document.value else {
                if case .null = document.value { continue }
                throw .invalid(origin: document.origin, path: "rule", message: "is not a map of Sigma keys")
            }
            try rule(
                Dictionary(pairs.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first }), document,
                into: &rules)
        }
    }

    func rule(_ keys: [String: ConfigNode], _ document: ConfigNode, into rules: inout Rules) throws(ConfigurationError)
    {
        guard let id = keys["id"].flatMap(scalar) else {
            throw .invalid(origin: document.origin, path: "rule", message: "has no id (each rule needs one)")
        }
        let fail = { (node: ConfigNode?, message: String) -> ConfigurationError in
            .invalid(origin: node?.origin ?? document.origin, path: "rule '\(id)'", message: message)
        }
        guard let title = keys["title"].flatMap(scalar) else { throw fail(nil, "has no title") }
        guard let levelText = keys["level"].flatMap(scalar) else {
            throw fail(nil, "has no level (informational, low, medium, high or critical)")
        }
        guard let level = SigmaLevel(name: levelText) else {
            throw fail(keys["level"], "level '\(levelText)' is none of informational, low, medium, high, critical")
        }
        let name = keys["name"].flatMap(scalar)
        if let correlation = keys["correlation"] {
            rules.correlations.append(
                try self.correlation(
                    correlation, id: id, name: name, title: title, level: level, generate: keys["generate"],
                    origin: document.origin, fail: fail))
            return
        }
        if let source = keys["logsource"], case .map(let pairs) = source.value {
            let logsource = Dictionary(pairs.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
            let product = logsource["product"].flatMap(scalar)
            let service = logsource["service"].flatMap(scalar)
            if product.map({ $0 != "openai" }) ?? false || service.map({ $0 != "audit" }) ?? false {
                rules.otherSources.append(document.origin)
                return
            }
        }
        guard let detection = keys["detection"], case .map(let pairs) = detection.value else {
            throw fail(keys["detection"], "has no detection (a map of selections and a condition)")
        }
        var selections: [String: SigmaSelection] = [:]
        var conditions: [String] = []
        for (key, node) in pairs {
            if key == "condition" {
                switch node.value {
                case .scalar(let text): conditions = [text]
                case .list(let items): conditions = items.compactMap(scalar)
                default: throw fail(node, "detection.condition is not text")
                }
                continue
            }
            if key == "timeframe" {
                throw fail(node, "detection.timeframe is not supported: write a correlation rule with a timespan")
            }
            do {
                selections[key] = try selection(node)
            } catch {
                throw fail(node, "detection.\(key): \(error.message)")
            }
        }
        guard !conditions.isEmpty else { throw fail(detection, "detection has no condition") }
        let condition: SigmaCondition
        do {
            var parsed: [SigmaCondition] = []
            for text in conditions { parsed.append(try SigmaCondition.parse(text, selections: Set(selections.keys))) }
            condition = parsed.count == 1 ? parsed[0] : .or(parsed)
        } catch {
            throw fail(detection, "detection.\(error.message)")
        }
        rules.rules.append(
            SigmaRule(
                id: id, name: name, title: title, level: level, tags: keys["tags"].map(scalars) ?? [],
                origin: document.origin, selections: selections, condition: condition))
    }

    func selection(_ node: ConfigNode) throws(SigmaRuleError) -> SigmaSelection {
        switch node.value {
        case .map(let pairs):
            return SigmaSelection(kind: .fields([try matchers(pairs)]))
        case .list(let items):
            if items.allSatisfy({ if case .map = $0.value { true } else { false } }) {
                var alternatives: [[SigmaFieldMatcher]] = []
                for item in items {
                    guard case .map(let pairs) = item.value else { continue }
                    alternatives.append(try matchers(pairs))
                }
                return SigmaSelection(kind: .fields(alternatives))
            }
            let words = items.compactMap(scalar)
            guard words.count == items.count, !words.isEmpty else {
                throw SigmaRuleError("a list is either of maps (any of them) or of keywords, not both")
            }
            return SigmaSelection(kind: .keywords(words.map { SigmaPattern("*\($0)*") }))
        case .scalar(let word):
            return SigmaSelection(kind: .keywords([SigmaPattern("*\(word)*")]))
        case .null:
            throw SigmaRuleError("is empty")
        }
    }

    func matchers(_ pairs: [(key: String, value: ConfigNode)]) throws(SigmaRuleError) -> [SigmaFieldMatcher] {
        guard !pairs.isEmpty else { throw SigmaRuleError("is an empty map") }
        var matchers: [SigmaFieldMatcher] = []
        for (key, node) in pairs {
            let values: [String?]
            switch node.value {
            case .null: values = [nil]
            case .scalar(let text): values = [text]
            case .list(let items):
                var list: [String?] = []
                for item in items {
                    switch item.value {
                    case .null: list.append(nil)
                    case .scalar(let text): list.append(text)
                    default: throw SigmaRuleError("'\(key)': a value is a list or a map, not text")
                    }
                }
                values = list
            case .map: throw SigmaRuleError("'\(key)': a value is a map, not text")
            }
            matchers.append(try SigmaFieldMatcher(key: key, values: values))
        }
        return matchers
    }

    func correlation(
        _ node: ConfigNode, id: String, name: String?, title: String, level: SigmaLevel, generate: ConfigNode?,
        origin: String, fail: (ConfigNode?, String) -> ConfigurationError
    ) throws(ConfigurationError) -> SigmaCorrelation {
        guard case .map(let pairs) = node.value else { throw fail(node, "correlation is not a map") }
        let keys = Dictionary(pairs.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
        let type = keys["type"].flatMap(scalar)
        guard let rules = keys["rules"].map(scalars), !rules.isEmpty else {
            throw fail(node, "correlation.rules names no rule")
        }
        guard let spanText = keys["timespan"].flatMap(scalar), let timespan = Self.timespan(spanText) else {
            throw fail(
                keys["timespan"] ?? node, "correlation.timespan is missing or not a time span (30s, 10m, 1h, 1d)")
        }
        guard let condition = keys["condition"], case .map(let terms) = condition.value else {
            throw fail(node, "correlation.condition is missing (gte: N)")
        }
        let byKey = Dictionary(terms.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
        var comparison: (SigmaCorrelation.Comparison, Int)?
        for (key, value) in terms where key != "field" {
            guard let found = SigmaCorrelation.Comparison(rawValue: key) else {
                throw fail(
                    value,
                    "correlation.condition.\(key) is not supported (gte, gt or eq: a stream has no end at which fewer could be judged)"
                )
            }
            guard let number = scalar(value).flatMap(Int.init), number >= 0 else {
                throw fail(value, "correlation.condition.\(key) is not a count")
            }
            comparison = (found, number)
        }
        guard let comparison else { throw fail(condition, "correlation.condition has no gte, gt or eq") }
        let kind: SigmaCorrelation.Kind
        switch type {
        case "event_count": kind = .eventCount
        case "value_count":
            guard let field = byKey["field"].flatMap(scalar) else {
                throw fail(condition, "correlation.condition.field is missing: value_count counts a field's values")
            }
            kind = .valueCount(field: field)
        default:
            throw fail(
                keys["type"] ?? node, "correlation.type '\(type ?? "")' is not supported (event_count, value_count)")
        }
        var generates = false
        // Sigma puts `generate` in the correlation; a rule that has it beside is read the same.
        if let generate = keys["generate"] ?? generate {
            guard let text = scalar(generate), let flag = Bool(text.lowercased()) else {
                throw fail(generate, "generate is not true or false")
            }
            generates = flag
        }
        return SigmaCorrelation(
            id: id, name: name, title: title, level: level, origin: origin, kind: kind, rules: rules,
            groupBy: keys["group-by"].map(scalars) ?? [], timespan: timespan, comparison: comparison.0,
            threshold: comparison.1, generate: generates)
    }

    /// Every correlation names rules that are there; ids are unique.
    func check(_ rules: Rules) throws(ConfigurationError) {
        var seen: [String: String] = [:]
        for (id, origin) in rules.rules.map({ ($0.id, $0.origin) }) + rules.correlations.map({ ($0.id, $0.origin) }) {
            if let first = seen[id] {
                throw .invalid(origin: origin, path: "rule '\(id)'", message: "the id is taken already (\(first))")
            }
            seen[id] = origin
        }
        for correlation in rules.correlations {
            for reference in correlation.rules
            where !rules.rules.contains(where: { $0.id == reference || $0.name == reference }) {
                throw .invalid(
                    origin: correlation.origin, path: "rule '\(correlation.id)'",
                    message: "correlation.rules names '\(reference)', which is no rule read")
            }
        }
    }

    /// Sigma's time spans: a number and `s`, `m`, `h` or `d`.
    static func timespan(_ text: String) -> Int64? {
        guard let unit = text.last, let number = Int64(text.dropLast()), number > 0 else { return nil }
        switch unit {
        case "s": return number
        case "m": return number * 60
        case "h": return number * 3600
        case "d": return number * 86_400
        default: return nil
        }
    }

    func scalar(_ node: ConfigNode) -> String? {
        if case .scalar(let text) = node.value { return text }
        return nil
    }

    func scalars(_ node: ConfigNode) -> [String] {
        switch node.value {
        case .scalar(let text): [text]
        case .list(let items): items.compactMap(scalar)
        default: []
        }
    }
}

extension SigmaRuleReader {
    /// The rules `detections:` names: the shipped folder, then the operator's files and
    /// folders. The shipped folder missing where the package puts it (a build from source)
    /// is not an error: `missingBuiltins` says so, for a notice; any other path missing is.
    public func read(_ settings: Configuration.Detections) throws(ConfigurationError) -> (
        rules: Rules, missingBuiltins: String?
    ) {
        var paths = settings.rules
        var missing: String?
        if let builtins = settings.builtinRules {
            if builtins == Configuration.Detections.packagedRules && !FileManager.default.fileExists(atPath: builtins) {
                missing = builtins
            } else {
                paths.insert(builtins, at: 0)
            }
        }
        let rules = try read(paths: paths)
        let known = Set(rules.rules.map(\.id) + rules.correlations.map(\.id))
        for id in settings.disable where !known.contains(id) {
            throw .invalid(
                origin: "configuration", path: "detections.disable",
                message: "'\(id)' is no rule read (openai-auditd rules list shows them)")
        }
        return (rules, missing)
    }
}
