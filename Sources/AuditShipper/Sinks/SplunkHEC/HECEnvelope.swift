/// The HEC event objects of a request body: one per audit event, concatenated (Splunk reads
/// them one after another, no separator needed; a newline keeps the body readable):
/// `{"time":effective_at,"host","source","sourcetype","index"?,"event":<the event, whole>,
/// "fields":{"openai_event_type","openai_actor_email"?,"openai_project_id"?,"openai_rules"?,
/// "openai_rule_level"?}}`.
/// `fields` are HEC's indexed fields, searchable without a spath.
struct HECEnvelope: Sendable {
    /// Everything before `"event":` but `time`, the same for every event of the sink.
    let prefix: [UInt8]

    init(settings: Configuration.SplunkHECSettings, host: String) {
        var prefix: [UInt8] = []
        for (key, value) in [("host", host), ("source", settings.source), ("sourcetype", settings.sourcetype)] {
            prefix.append(contentsOf: ",\"\(key)\":".utf8)
            JSONString.append(value, to: &prefix)
        }
        if let index = settings.index {
            prefix.append(contentsOf: #","index":"#.utf8)
            JSONString.append(index, to: &prefix)
        }
        self.prefix = prefix
    }

    /// One event's object and its newline, appended to `body`.
    func append(_ event: AuditEvent, to body: inout [UInt8]) {
        body.append(contentsOf: #"{"time":"#.utf8)
        JSONString.append(integer: event.effectiveAt, to: &body)
        body.append(contentsOf: prefix)
        body.append(contentsOf: #","event":"#.utf8)
        event.withJSON { body.append(contentsOf: $0) }
        body.append(contentsOf: #","fields":{"openai_event_type":"#.utf8)
        JSONString.append(event.type, to: &body)
        let details = EventDetails(event)
        if let email = details.actorEmail {
            body.append(contentsOf: #","openai_actor_email":"#.utf8)
            JSONString.append(email, to: &body)
        }
        if let project = details.projectID {
            body.append(contentsOf: #","openai_project_id":"#.utf8)
            JSONString.append(project, to: &body)
        }
        // What the detection rules found: a multivalue indexed field and the level.
        if let detection = event.detection {
            body.append(contentsOf: #","openai_rules":"#.utf8)
            EventAnnotation.appendRules(detection, to: &body)
            body.append(contentsOf: #","openai_rule_level":"#.utf8)
            JSONString.append(detection.level.description, to: &body)
        }
        body.append(contentsOf: "}}\n".utf8)
    }

    /// The bytes `append` adds for `event`, near enough to cut requests by (the fields are
    /// counted at their longest likely).
    func size(of event: AuditEvent) -> Int {
        event.jsonCount + prefix.count + 200
            + EventAnnotation.size(of: event)
    }
}
