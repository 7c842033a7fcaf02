import Logging
import Synchronization

/// The rules in force, evaluated as events pass: which rules an event matched and the highest
/// of their levels (`Detection`), or nil. Rules are compiled once (`SigmaRuleReader`); an
/// event's JSON is read only when a rule that admits its `type` reads other fields.
///
/// Correlations keep, per group, the events that matched the rules they count within their
/// timespan of `effective_at`, keyed by event id, so an event evaluated twice (a lookback's
/// re-read) is counted once. Memory stays within `maxKept` events in all: past it, the
/// groups whose newest event is older than their timespan before the newest seen are dropped,
/// then the oldest events.
public final class Detector: Sendable {
    public let rules: [SigmaRule]
    public let correlations: [SigmaCorrelation]
    /// Rules counted by a correlation that does not `generate` them: they mark no event alone.
    let counted: Set<String>
    /// For each rule, whether it marks events (it is not in `counted`), by index in `rules`.
    let marks: [Bool]
    let windows = Mutex<[String: [String: [HashedID: Entry]]]>([:])
    /// Each event type's `Plan`, worked out at its first event: a type is matched against the
    /// rules' type patterns once, not at every event (the API has some 150 types).
    let plans = Mutex(Plans())
    /// For each correlation, the indices in `rules` of the rules it counts.
    let counters: [Set<Int>]
    let kept = Mutex(0)
    let maxKept: Int

    struct Entry {
        let at: Int64
        let value: String?
    }

    public init(_ read: SigmaRuleReader.Rules, disabled: Set<String> = [], maxKept: Int = 200_000) {
        let correlations = read.correlations.filter { !disabled.contains($0.id) }
        var referenced: Set<String> = []
        var counted = disabled
        for correlation in correlations {
            for reference in correlation.rules {
                for rule in read.rules where rule.id == reference || rule.name == reference {
                    referenced.insert(rule.id)
                    if !correlation.generate { counted.insert(rule.id) }
                }
            }
        }
        // A disabled rule still feeds the correlations that count it: disabling is of its marks.
        let rules = read.rules.filter { !disabled.contains($0.id) || referenced.contains($0.id) }
        self.rules = rules
        self.correlations = correlations
        counters = correlations.map { correlation in
            Set(
                rules.indices.filter {
                    correlation.rules.contains(rules[$0].id) || rules[$0].name.map(correlation.rules.contains) == true
                })
        }
        self.counted = counted
        marks = rules.map { !counted.contains($0.id) }
        self.maxKept = maxKept
    }

    /// Takes over `old`'s correlation windows for the correlations both have (a reload that
    /// re-read the rules), so a burst is not counted from zero again.
    public func adopt(_ old: Detector) {
        let ids = Set(correlations.map(\.id))
        let kept = old.windows.withLock { $0.filter { ids.contains($0.key) } }
        let count = kept.values.reduce(0) { $0 + $1.values.reduce(0) { $0 + $1.count } }
        windows.withLock { $0 = kept }
        self.kept.withLock { $0 = count }
    }

    /// The plans made so far: by the type's number where the event has one
    /// (`AuditEvent.typeNumber`, below `EventTypeNames.capacity`), else by its name.
    struct Plans {
        /// By type number; nil where none is made yet.
        var numbered: [Plan?] = []
        /// By type number, whether its plan is made and has rules: the events of the other
        /// made types (most) are passed over without their plan being touched.
        var made: [Made] = []
        var named: [String: Plan] = [:]

        enum Made: UInt8 { case not, empty, rules }

        subscript(number number: Int) -> Plan? {
            get { number < numbered.count ? numbered[number] : nil }
            set {
                if number >= numbered.count {
                    numbered += repeatElement(nil, count: number + 1 - numbered.count)
                    made += repeatElement(.not, count: number + 1 - made.count)
                }
                numbered[number] = newValue
                made[number] = newValue.map { $0.isEmpty ? .empty : .rules } ?? .not
            }
        }
    }

    /// What the rules make of one event type, worked out once per type: the rules that read
    /// nothing but `type` are decided for good; the others are left to each event's fields.
    /// A class: an event takes its type's plan with one reference count.
    final class Plan: Sendable {
        /// Rules that match every event of the type.
        let matched: [Int]
        /// Rules that admit the type and read other fields.
        let evaluate: [Int]
        /// Whether one of `evaluate` searches the JSON's text (keywords).
        let searchesText: Bool
        /// The correlations that count one of `matched` or `evaluate` (indices in `correlations`).
        let correlations: [Int]
        /// The fields those rules and correlations read: all of an event's JSON that is built
        /// (an `api_key.created` needs none of the actor a login's correlations read).
        let paths: FieldPaths
        /// What every event of the type comes to, when that depends on nothing else (no rule
        /// reads its fields, no correlation counts it): made once, handed out at each event.
        let fixed: Detection?
        var isEmpty: Bool { matched.isEmpty && evaluate.isEmpty }

        init(
            matched: [Int], evaluate: [Int], searchesText: Bool, correlations: [Int], paths: FieldPaths,
            fixed: Detection?
        ) {
            self.matched = matched
            self.evaluate = evaluate
            self.searchesText = searchesText
            self.correlations = correlations
            self.paths = paths
            self.fixed = fixed
        }
    }

    func plan(for event: AuditEvent) -> Plan {
        let number = Int(event.typeNumber)
        let type = event.type
        if let known = plans.withLock({ number > 0 ? $0[number: number] : $0.named[type] }) { return known }
        let typeOnly = EventFields(typeOnly: type)
        var matched: [Int] = []
        var evaluate: [Int] = []
        for (index, rule) in rules.enumerated() where rule.admits(type: type) {
            if rule.readsFields {
                evaluate.append(index)
            } else if rule.matches(typeOnly, json: "") {
                matched.append(index)
            }
        }
        let correlating = counters.indices.filter { !counters[$0].isDisjoint(with: matched + evaluate) }
        var fixed: Detection?
        if evaluate.isEmpty, correlating.isEmpty {
            let marking = matched.filter { marks[$0] }
            if let level = marking.map({ rules[$0].level }).max() {
                fixed = Detection(rules: marking.map { rules[$0].id }, level: level)
            }
        }
        var paths = FieldPaths()
        for index in evaluate { for path in rules[index].paths { paths.insert(path) } }
        for index in correlating { for path in correlations[index].paths { paths.insert(path) } }
        let plan = Plan(
            matched: matched, evaluate: evaluate, searchesText: evaluate.contains { rules[$0].searchesText },
            correlations: correlating, paths: paths, fixed: fixed)
        plans.withLock { plans in
            if number > 0 {
                // Numbers stop at EventTypeNames.capacity: bounded.
                plans[number: number] = plan
            } else {
                // Bounded: a server inventing types cannot grow it without end.
                if plans.named.count >= 10_000 { plans.named.removeAll() }
                plans.named[type] = plan
            }
        }
        return plan
    }

    /// What the rules find in `event`.
    public func evaluate(_ event: AuditEvent) -> Detection? {
        evaluate(event, plan(for: event))
    }

    /// What the rules find in `events`, as each of them would alone, in their order: the
    /// events a rule matched, by their offset in `events`. The types' plans are found under
    /// one lock for the batch, by number: an event of a type no rule admits costs an array
    /// read (perf: a look-up by name, hashing and retaining the type, was half the rules' cost).
    public func evaluate(_ events: ArraySlice<AuditEvent>) -> [(offset: Int, detection: Detection)] {
        // The events a plan has rules for, and those whose plan is not made yet (nil), in order.
        let work = plans.withLock { plans in
            var work: [(offset: Int, plan: Plan?)] = []
            for (offset, event) in events.enumerated() {
                let number = Int(event.typeNumber)
                switch number > 0 && number < plans.made.count ? plans.made[number] : .not {
                case .empty: continue
                case .rules: work.append((offset, plans.numbered[number]))
                case .not: work.append((offset, nil))
                }
            }
            return work
        }
        var found: [(offset: Int, detection: Detection)] = []
        for (offset, plan) in work {
            let event = events[events.startIndex + offset]
            if let detection = evaluate(event, plan ?? self.plan(for: event)) { found.append((offset, detection)) }
        }
        return found
    }

    func evaluate(_ event: AuditEvent, _ plan: Plan) -> Detection? {
        guard !plan.isEmpty else { return nil }
        if let fixed = plan.fixed { return fixed }
        var fields: EventFields?
        var matched = plan.matched
        if !plan.evaluate.isEmpty {
            let read = event.withJSON { EventFields(json: $0, paths: plan.paths) }
            fields = read
            let json = plan.searchesText ? event.jsonString : ""
            for index in plan.evaluate where rules[index].matches(read, json: json) { matched.append(index) }
        }
        guard !matched.isEmpty else { return nil }
        matched.sort()
        var ids: [String] = []
        var level: SigmaLevel?
        for index in matched where marks[index] {
            ids.append(rules[index].id)
            level = max(level ?? rules[index].level, rules[index].level)
        }
        for index in plan.correlations where matched.contains(where: { counters[index].contains($0) }) {
            let correlation = correlations[index]
            let read = fields ?? event.withJSON { EventFields(json: $0, paths: plan.paths) }
            fields = read
            if count(correlation, event, read) {
                ids.append(correlation.id)
                level = max(level ?? correlation.level, correlation.level)
            }
        }
        guard let level else { return nil }
        return Detection(rules: ids, level: level)
    }

    /// Adds `event` to its group's window and says whether the threshold holds at its time.
    func count(_ correlation: SigmaCorrelation, _ event: AuditEvent, _ fields: EventFields) -> Bool {
        let group = correlation.groupPaths.map { path in
            fields.values(at: path).compactMap(\.text).first ?? ""
        }.joined(separator: "\u{1F}")
        let value = correlation.valuePath.flatMap { fields.values(at: $0).lazy.compactMap(\.text).first }
        if correlation.valuePath != nil, value == nil { return false }
        let at = event.effectiveAt
        let (count, added) = windows.withLock { windows in
            // In place, through the subscripts: a copy taken out and put back would copy the
            // group's entries at every event.
            Self.add(
                Entry(at: at, value: value), id: event.hashedID,
                to: &windows[correlation.id, default: [:]][group, default: [:]],
                correlation)
        }
        if added { trimIfFull() }
        return correlation.comparison.holds(count, correlation.threshold)
    }

    /// Adds `entry` (the event `id`) to one group's `entries` and counts them as `correlation`
    /// does at the entry's time; `added` is false for an event counted before.
    static func add(
        _ entry: Entry, id: HashedID, to entries: inout [HashedID: Entry], _ correlation: SigmaCorrelation
    ) -> (count: Int, added: Bool) {
        let added = entries.updateValue(entry, forKey: id) == nil
        let from = entry.at - correlation.timespan
        // What lies a timespan before this event counts for no later one (events come oldest
        // first): a group holds about one timespan of events, so a busy one (an email failing
        // logins all week) costs what its window holds, not its history.
        if entries.count > 32 { entries = entries.filter { $0.value.at >= from } }
        switch correlation.kind {
        case .eventCount:
            return (entries.values.reduce(0) { $0 + ($1.at >= from && $1.at <= entry.at ? 1 : 0) }, added)
        case .valueCount:
            var values: Set<String> = []
            for other in entries.values where other.at >= from && other.at <= entry.at {
                if let value = other.value { values.insert(value) }
            }
            return (values.count, added)
        }
    }

    /// Keeps the windows within `maxKept` events.
    func trimIfFull() {
        let over = kept.withLock { kept -> Bool in
            kept += 1
            return kept > maxKept
        }
        guard over else { return }
        let spans = Dictionary(correlations.map { ($0.id, $0.timespan) }, uniquingKeysWith: { first, _ in first })
        let left = windows.withLock { windows -> Int in
            let newest = windows.values.flatMap(\.values).flatMap(\.values).map(\.at).max() ?? 0
            for (id, groups) in windows {
                let span = spans[id] ?? 0
                var trimmed: [String: [HashedID: Entry]] = [:]
                for (group, entries) in groups {
                    let live = entries.filter { $0.value.at >= newest - span }
                    if !live.isEmpty { trimmed[group] = live }
                }
                windows[id] = trimmed
            }
            var total = windows.values.flatMap(\.values).reduce(0) { $0 + $1.count }
            // Still full: the oldest events go, whatever their group.
            if total > maxKept / 2 {
                let cut =
                    windows.values.flatMap(\.values).flatMap(\.values).map(\.at).sorted()[total - maxKept / 2]
                for (id, groups) in windows {
                    windows[id] = groups.mapValues { $0.filter { $0.value.at >= cut } }.filter { !$0.value.isEmpty }
                }
                total = windows.values.flatMap(\.values).reduce(0) { $0 + $1.count }
            }
            return total
        }
        kept.withLock { $0 = left }
    }
}

extension Detector {
    /// The rules `detections:` names, read and compiled, with what was read; nil when
    /// detections are off. The shipped folder missing where the package puts it (a build run
    /// from source) is said once, as a notice.
    public static func load(_ settings: Configuration.Detections, logger: Logger) throws(ConfigurationError) -> (
        Detector, SigmaRuleReader.Rules
    )? {
        guard settings.enabled else { return nil }
        let (rules, missing) = try SigmaRuleReader().read(settings)
        if let missing {
            logger.notice(
                "the rules the package ships are not installed; only detections.rules are read",
                metadata: ["detections.builtin_rules": "\(missing)"])
        }
        return (Detector(rules, disabled: Set(settings.disable)), rules)
    }
}
