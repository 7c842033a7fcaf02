/// The readable line and the severity of an event: pure functions shared by the journal
/// (`MESSAGE`, `PRIORITY`) and, later, syslog.
public enum EventSummary {
    /// syslog severity: 4 (warning) for `*.failed` and `*.deleted`, 6 (info) for a login or
    /// logout that succeeded, 5 (notice) for every other change, unknown types included.
    public static func priority(type: String) -> Int {
        if type.hasSuffix(".failed") || type.hasSuffix(".deleted") { return 4 }
        if type == "login.succeeded" || type == "logout.succeeded" { return 6 }
        return 5
    }

    /// The event's syslog severity: the level of the rules it matched where it has one
    /// (critical 2, high 3, medium 4, low 5), else `priority(type:)`, which an informational
    /// match keeps too. The journal's PRIORITY and every syslog PRI say this.
    public static func priority(_ event: AuditEvent) -> Int {
        switch event.detection?.level {
        case .critical: 2
        case .high: 3
        case .medium: 4
        case .low: 5
        case .informational, nil: priority(type: event.type)
        }
    }

    /// One line: `api_key.created by alice@example.com (session 203.0.113.7) in proj_abc: key_xyz`.
    ///
    /// The actor is the user's email (or id); a key is named as `api key key_… of alice@…` or
    /// `service account svc_… (api key key_…)`. The target is the payload's id and, when the
    /// payload has one, a name, an invitee and role, or an error. Control characters become
    /// spaces so the line stays one line.
    public static func message(type: String, details: EventDetails) -> String {
        var line = type
        switch details.actorType {
        case "api_key":
            if let account = details.serviceAccountID {
                line += " by service account \(account)"
                if let key = details.apiKeyID { line += " (api key \(key))" }
            } else {
                line += " by api key \(details.apiKeyID ?? "unknown")"
                if let who = details.actorEmail ?? details.actorID { line += " of \(who)" }
            }
        default:
            if let who = details.actorEmail ?? details.actorID {
                line += " by \(who)"
                if let ip = details.actorIP { line += " (session \(ip))" }
            } else if details.actorType != nil {
                line += " by an unknown \(details.actorType ?? "actor")"
            }
        }
        if let project = details.projectID {
            line += " in \(project)"
        }
        let label = details.resourceLabel.map { String($0.prefix(200)) }
        switch (details.resourceID, label) {
        case (let id?, let label?): line += ": \(id) (\(label))"
        case (let id?, nil): line += ": \(id)"
        case (nil, let label?): line += ": \(label)"
        case (nil, nil): break
        }
        return String(line.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : Character($0) })
    }
}
