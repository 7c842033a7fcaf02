import Foundation

extension Invocation {
    /// The rules `detections:` names, as the daemon reads them; nil when detections are off.
    func detector() throws(ConfigurationError) -> (Detector, SigmaRuleReader.Rules)? {
        try Detector.load(configuration.detections, logger: logger)
    }

    /// `rules list`: every rule read, one line each: id, level, whether it marks events, title,
    /// and the file and line it was read from.
    public func listRules() throws -> [String] {
        guard let (detector, rules) = try detector() else { return ["detections are off (detections.enabled: false)"] }
        let disabled = Set(configuration.detections.disable)
        // The detector's own set: counted by a correlation that does not generate them (the
        // disabled ones are in it too, and are named first below).
        let counted = detector.counted
        var rows: [[String]] = [["ID", "LEVEL", "MARKS", "TITLE", "SOURCE"]]
        for rule in rules.rules {
            let marks = disabled.contains(rule.id) ? "disabled" : counted.contains(rule.id) ? "counted" : "yes"
            rows.append([rule.id, "\(rule.level)", marks, rule.title, rule.origin])
        }
        for correlation in rules.correlations {
            rows.append([
                correlation.id, "\(correlation.level)", disabled.contains(correlation.id) ? "disabled" : "yes",
                correlation.title, correlation.origin,
            ])
        }
        let widths = (0..<4).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            (0..<4).map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                + "  " + row[4]
        }
    }

    /// `rules test FILE`: events, one JSON object a line (as a file sink writes them), through
    /// the rules oldest first, as the daemon delivers them; one line per event that matched:
    /// its id, type, level and the rules. A line that is no event is named on stderr and skipped.
    public func testRules(file: String) throws -> [String] {
        guard let (detector, _) = try detector() else { return ["detections are off (detections.enabled: false)"] }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ConfigurationError.unreadable(file: file, reason: "no such file, or it cannot be read")
        }
        var events: [AuditEvent] = []
        for (index, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() {
            let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any]
            guard let object, let id = object["id"] as? String, let type = object["type"] as? String,
                let effectiveAt = (object["effective_at"] as? NSNumber)?.int64Value
            else {
                logger.warning(
                    "not an event (a JSON object with id, type and effective_at): skipped",
                    metadata: ["file": "\(file):\(index + 1)"])
                continue
            }
            events.append(AuditEvent.make(id: id, type: type, effectiveAt: effectiveAt, json: Array(line)))
        }
        var lines: [String] = []
        for event in events.enumerated().sorted(by: {
            ($0.element.effectiveAt, $0.offset) < ($1.element.effectiveAt, $1.offset)
        })
        .map(\.element) {
            guard let detection = detector.evaluate(event) else { continue }
            lines.append("\(event.id) \(event.type) \(detection.level) \(detection.rules.joined(separator: ","))")
        }
        return lines
    }
}
