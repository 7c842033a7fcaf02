import Foundation
import Testing

@testable import AuditShipper

/// The Sigma engine on its own: rules read from YAML, matched against events built here.
@Suite struct SigmaRuleTests {
    static func event(_ type: String, at: Int64 = 1_800_000_000, id: String = UUID().uuidString, _ body: String = "")
        -> AuditEvent
    {
        let json = "{\"id\":\"\(id)\",\"type\":\"\(type)\",\"effective_at\":\(at)\(body.isEmpty ? "" : "," + body)}"
        return AuditEvent.make(id: id, type: type, effectiveAt: at, json: Array(json.utf8))
    }

    static func detector(_ yaml: String, disabled: Set<String> = []) throws -> Detector {
        var rules = SigmaRuleReader.Rules()
        try SigmaRuleReader().read(yaml: yaml, file: "test.yml", into: &rules)
        try SigmaRuleReader().check(rules)
        return Detector(rules, disabled: disabled)
    }

    static func refusal(_ yaml: String) -> String {
        do {
            _ = try detector(yaml)
            return "accepted"
        } catch {
            return "\(error)"
        }
    }

    static let header = """
        title: test
        id: test-rule
        level: high
        logsource: {product: openai, service: audit}

        """

    @Test func modifiersListsAndCaseFollowSigma() throws {
        let detector = try Self.detector(
            Self.header + """
                detection:
                  key:
                    type: api_key.created
                    api_key.created.data.scopes|endswith: [".write", ":write"]
                  email:
                    actor.session.user.email|endswith: "@Example.COM"
                  condition: key and email
                """)
        let session = #""actor":{"session":{"user":{"email":"Mallory@example.com"},"ip_address":"10.1.2.3"}}"#
        let broad = Self.event(
            "api_key.created", #""api_key.created":{"data":{"scopes":["model.read","api.model:write"]}},"# + session)
        #expect(detector.evaluate(broad) == Detection(rules: ["test-rule"], level: .high))
        let narrow = Self.event(
            "api_key.created", #""api_key.created":{"data":{"scopes":["model.read"]}},"# + session)
        #expect(detector.evaluate(narrow) == nil, "no scope ends in write")
        #expect(detector.evaluate(Self.event("api_key.deleted", session)) == nil)
    }

    @Test func wildcardsEscapesNullExistsAllAndCased() throws {
        let yaml = { (selection: String) in
            Self.header + "detection:\n  selection:\n" + selection + "\n  condition: selection\n"
        }
        let event = Self.event(
            "user.updated",
            #""user.updated":{"id":"user-1","changes_requested":{"role":"Owner","note":"a*b","tags":["x","y"]}},"project":null"#
        )
        let cases: [(String, Bool)] = [
            ("    user.updated.changes_requested.role: owner", true),
            ("    user.updated.changes_requested.role|cased: owner", false),
            ("    user.updated.changes_requested.role: ow?er", true),
            ("    user.updated.changes_requested.role: o*", true),
            ("    user.updated.changes_requested.note: 'a\\*b'", true),
            ("    user.updated.changes_requested.note: 'a\\*c'", false),
            ("    user.updated.changes_requested.tags|all: [x, y]", true),
            ("    user.updated.changes_requested.tags|all: [x, z]", false),
            ("    user.updated.changes_requested.tags: [z, y]", true),
            ("    project: null", true),
            ("    actor: null", true),
            ("    user.updated.id: null", false),
            ("    project|exists: true", true),
            ("    actor|exists: false", true),
            ("    user.updated.changes_requested.role|re: '^O.n'", true),
            ("    user.updated.changes_requested.role|re: '^o'", false),
            ("    user.updated.changes_requested.role|contains: WN", true),
            ("    user.updated.changes_requested.role|startswith: wn", false),
        ]
        for (selection, expected) in cases {
            let detector = try Self.detector(yaml(selection))
            #expect((detector.evaluate(event) != nil) == expected, "\(selection)")
        }
    }

    @Test func patternsFoldCaseBeyondASCIIAndAQuestionMarkIsOneCharacter() {
        #expect(SigmaPattern("ZÜRICH*").matches("zürich-1"))
        #expect(SigmaPattern("a?c").matches("aéc") && !SigmaPattern("a?c").matches("ac"))
        #expect(SigmaPattern("*.write").matches("API.FILES.WRITE"))
        #expect(!SigmaPattern("*.write", cased: true).matches("api.files.WRITE"))
        #expect(SigmaPattern("").matches("") && !SigmaPattern("").matches("x"))
        #expect(SigmaPattern("a**b").matches("ab") && SigmaPattern("*").matches(""))
        // A pattern ending in `*` and a literal is compared at the text's end only, and never
        // over what the pieces before it took.
        #expect(SigmaPattern("ab*b").matches("abb") && !SigmaPattern("ab*b").matches("ab"))
        #expect(!SigmaPattern("*.write").matches("write") && SigmaPattern("*.write").matches(".write"))
        #expect(!SigmaPattern("*.write").matches("files.write.all") && SigmaPattern("*x*y").matches("axbxy"))
    }

    @Test func cidrAndNotAndQuantifiers() throws {
        let detector = try Self.detector(
            Self.header + """
                detection:
                  sel_login:
                    type: login.succeeded
                  sel_admin:
                    actor.session.user.email|endswith: "@corp.example"
                  office:
                    actor.session.ip_address|cidr:
                      - 192.0.2.0/24
                      - 2001:db8::/32
                  condition: all of sel_* and not office
                """)
        func login(_ email: String, _ ip: String) -> AuditEvent {
            Self.event(
                "login.succeeded", #""actor":{"session":{"user":{"email":"\#(email)"},"ip_address":"\#(ip)"}}"#)
        }
        #expect(detector.evaluate(login("a@corp.example", "198.51.100.7")) != nil, "an admin from outside the office")
        #expect(detector.evaluate(login("a@corp.example", "192.0.2.44")) == nil, "from the office")
        #expect(detector.evaluate(login("a@corp.example", "2001:db8:1::5")) == nil, "from the office, IPv6")
        #expect(detector.evaluate(login("a@elsewhere.example", "198.51.100.7")) == nil, "not an admin")
    }

    @Test func conditionsBindNotThenAndThenOr() throws {
        let selections: Set<String> = ["a", "b", "c"]
        #expect(
            try SigmaCondition.parse("a or b and not c", selections: selections)
                == .or([.selection("a"), .and([.selection("b"), .not(.selection("c"))])]))
        #expect(
            try SigmaCondition.parse("(a or b) and c", selections: selections)
                == .and([.or([.selection("a"), .selection("b")]), .selection("c")]))
        #expect(
            try SigmaCondition.parse("1 of them", selections: ["a", "_hidden"]) == .or([.selection("a")]),
            "them leaves out names that begin with _")
    }

    @Test func whatARuleFileGetsWrongIsNamedWithItsLineAndId() {
        let unknown = Self.refusal(
            Self.header + """
                detection:
                  selection:
                    type|base64offset: x
                  condition: selection
                """)
        #expect(
            unknown.contains("test.yml:7: rule 'test-rule': detection.selection: unknown modifier 'base64offset'"),
            "\(unknown)")
        let missing = Self.refusal(
            Self.header + """
                detection:
                  selection:
                    type: x
                  condition: selection and other
                """)
        #expect(missing.contains("no selection named 'other'"), "\(missing)")
        let level = Self.refusal("title: t\nid: x\nlevel: severe\ndetection: {s: {type: a}, condition: s}\n")
        #expect(level.contains("test.yml:3: rule 'x': level 'severe' is none of"), "\(level)")
        let yaml = Self.refusal("title: t\nid: x\n  level: [\n")
        #expect(yaml.contains("test.yml: not valid YAML: line"), "\(yaml)")
        let noID = Self.refusal("title: t\nlevel: high\n")
        #expect(noID.contains("has no id"), "\(noID)")
        let lte = Self.refusal(
            "title: t\nid: c\nlevel: low\ncorrelation: {type: event_count, rules: [test-rule], timespan: 5m, condition: {lte: 3}}\n"
                + "---\n" + Self.header + "detection: {s: {type: a}, condition: s}\n")
        #expect(lte.contains("correlation.condition.lte is not supported"), "\(lte)")
        let dangling = Self.refusal(
            "title: t\nid: c\nlevel: low\ncorrelation: {type: event_count, rules: [nothing], timespan: 5m, condition: {gte: 3}}\n"
        )
        #expect(dangling.contains("names 'nothing', which is no rule read"), "\(dangling)")
    }

    @Test func rulesOfAnotherProductAreLeftOut() throws {
        var rules = SigmaRuleReader.Rules()
        try SigmaRuleReader().read(
            yaml: """
                title: windows
                id: w
                level: high
                logsource: {product: windows, service: security}
                detection: {s: {EventID: 4625}, condition: s}
                """, file: "mixed.yml", into: &rules)
        #expect(rules.rules.isEmpty && rules.otherSources == ["mixed.yml:1"])
    }

    @Test func correlationsCountByEffectiveAtPerGroupOnceEachAndMarkTheRestOfTheBurst() throws {
        let detector = try Self.detector(
            """
            title: failed
            id: failed
            level: informational
            logsource: {product: openai, service: audit}
            detection: {s: {type: login.failed}, condition: s}
            ---
            title: stuffing
            id: stuffing
            level: medium
            correlation:
              type: value_count
              rules: [failed]
              group-by: [actor.session.user.email]
              timespan: 30m
              condition: {gte: 5, field: actor.session.ip_address}
            ---
            title: burst
            id: burst
            level: low
            correlation:
              type: event_count
              rules: [failed]
              group-by: [actor.session.user.email]
              timespan: 10m
              condition: {gte: 10}
            """)
        let start: Int64 = 1_800_000_000
        func failed(_ email: String, _ ip: String, _ at: Int64, id: String = UUID().uuidString) -> AuditEvent {
            Self.event(
                "login.failed", at: at, id: id,
                #""actor":{"session":{"user":{"email":"\#(email)"},"ip_address":"\#(ip)"}}"#)
        }
        // Four addresses for one email: below the threshold; the base rule marks nothing alone.
        for index in 0..<4 { #expect(detector.evaluate(failed("v@x", "10.0.0.\(index)", start + Int64(index))) == nil) }
        // The same event again (a lookback's re-read) counts once.
        let repeated = failed("v@x", "10.0.0.3", start + 3, id: "repeat")
        #expect(detector.evaluate(repeated) == nil)
        #expect(detector.evaluate(repeated) == nil)
        // Another email's failures are another group.
        #expect(detector.evaluate(failed("w@x", "10.0.0.9", start + 5)) == nil)
        // The fifth address completes it; the next event of the burst is marked too.
        #expect(
            detector.evaluate(failed("v@x", "10.0.0.4", start + 6)) == Detection(rules: ["stuffing"], level: .medium))
        #expect(detector.evaluate(failed("v@x", "10.0.0.1", start + 7))?.rules == ["stuffing"])
        // Past the timespan of effective_at, the window holds too few.
        #expect(detector.evaluate(failed("v@x", "10.0.0.1", start + 3600)) == nil)
        // Ten events in ten minutes: the burst, and stuffing with it while five addresses are in range.
        var last: Detection?
        for index in 0..<10 {
            last = detector.evaluate(failed("z@x", "10.0.1.\(index)", start + 7200 + Int64(index) * 30))
        }
        #expect(last == Detection(rules: ["stuffing", "burst"], level: .medium))
    }

    /// A rule `failed` (every login.failed, low) and a correlation `burst` (at least `atLeast`
    /// of them within a minute, at `level`) that keeps its rule's own marks; `more` documents
    /// between the two.
    static func failedAndBurst(level: String, atLeast: Int, more: String = "") -> String {
        """
        title: failed
        id: failed
        level: low
        logsource: {product: openai, service: audit}
        detection: {s: {type: login.failed}, condition: s}
        ---
        \(more)title: burst
        id: burst
        level: \(level)
        correlation: {type: event_count, rules: [failed], generate: true, group-by: [], timespan: 1m, condition: {gte: \(atLeast)}}
        """
    }

    @Test func aDisabledRuleMarksNothingButStillFeedsItsCorrelation() throws {
        let yaml = Self.failedAndBurst(level: "high", atLeast: 2)
        let both = try Self.detector(yaml)
        #expect(both.evaluate(Self.event("login.failed")) == Detection(rules: ["failed"], level: .low))
        #expect(both.evaluate(Self.event("login.failed")) == Detection(rules: ["failed", "burst"], level: .high))
        let onlyBurst = try Self.detector(yaml, disabled: ["failed"])
        #expect(onlyBurst.evaluate(Self.event("login.failed")) == nil)
        #expect(onlyBurst.evaluate(Self.event("login.failed")) == Detection(rules: ["burst"], level: .high))
    }

    /// The cycle evaluates a batch at once (one look-up of the types' plans): the same
    /// verdicts, in the same order, as one event at a time, correlations counted as they come.
    @Test func aBatchIsEvaluatedAsItsEventsOneByOne() throws {
        let yaml = Self.failedAndBurst(
            level: "critical", atLeast: 3,
            more: """
                title: owner
                id: owner
                level: high
                logsource: {product: openai, service: audit}
                detection: {s: {type: invite.sent, invite.sent.data.role: owner}, condition: s}
                ---

                """)
        let owner = #""invite.sent":{"data":{"role":"owner"}}"#
        let reader = #""invite.sent":{"data":{"role":"reader"}}"#
        // Two events whose types have no number (past EventTypeNames.capacity): their plans
        // are found by name.
        let unnumbered = { (type: String, at: Int64) in
            let json = #"{"id":"u\#(at)","type":"\#(type)","effective_at":\#(at)}"#
            return AuditEvent.make(
                id: HashedID("u\(at)"), type: type, typeNumber: 0, effectiveAt: at, count: json.utf8.count
            ) { _ = $0.initialize(from: json.utf8) }
        }
        let batch: [AuditEvent] = [
            Self.event("login.failed", at: 100), Self.event("invite.sent", owner), Self.event("project.created"),
            Self.event("login.failed", at: 101), Self.event("invite.sent", reader), unnumbered("login.failed", 102),
            Self.event("never.seen.before"), Self.event("login.failed", at: 103), unnumbered("project.created", 104),
        ]
        let oneByOne = try Self.detector(yaml)
        let expected = batch.map { oneByOne.evaluate($0) }
        let failed = Detection(rules: ["failed"], level: .low)
        let burst = Detection(rules: ["failed", "burst"], level: .critical)
        #expect(
            expected == [failed, Detection(rules: ["owner"], level: .high), nil, failed, nil, burst, nil, burst, nil])
        // The batch's answer as one per event.
        let each = { (detector: Detector) in
            var each = [Detection?](repeating: nil, count: batch.count)
            for (offset, detection) in detector.evaluate(batch[...]) { each[offset] = detection }
            return each
        }
        // A new detector, whose plans are made as the batch is evaluated.
        #expect(each(try Self.detector(yaml)) == expected)
        // One whose plans for some of the types are made already (by events no correlation counts).
        let warm = try Self.detector(yaml)
        _ = warm.evaluate(Self.event("invite.sent", reader))
        _ = warm.evaluate(Self.event("project.created"))
        _ = warm.evaluate(unnumbered("project.created", 99))
        #expect(each(warm) == expected)
        // A slice that does not start at 0 is answered by offsets in it.
        #expect(try Self.detector(yaml).evaluate(batch[1...]).map(\.offset) == [0, 2, 4, 6])
    }

    @Test func fieldsAreReadWithEscapesNumbersDottedKeysAndNesting() {
        let json = #"{"a":{"b.c":[{"d":"x\"y\u00e9\ud83d\ude00\n"},{"d":2.5e3}]},"n":-7,"t":true,"z":null, "e":{}}"#
        Array(json.utf8).withUnsafeBufferPointer { bytes in
            let fields = EventFields(json: bytes)
            #expect(fields.values(at: ["a", "b", "c", "d"]).compactMap(\.text) == ["x\"y\u{e9}\u{1F600}\n", "2.5e3"])
            #expect(fields.values(at: ["n"]).compactMap(\.text) == ["-7"])
            #expect(fields.values(at: ["t"]).compactMap(\.text) == ["true"])
            #expect(fields.exists(["z"]) && fields.exists(["e"]) && !fields.exists(["missing"]))
        }
        // Only the paths the rules read are built; the rest is skipped, braces in strings and all.
        var paths = FieldPaths()
        paths.insert(["a", "b", "c", "d"])
        let skipped =
            #"{"x":{"y":"}]\"{[","v":"ends in a backslash\\","z":[1,{"w":null}]},"a":{"b.c":[{"d":"kept","e":"dropped"}]},"n":true}"#
        Array(skipped.utf8).withUnsafeBufferPointer { bytes in
            let fields = EventFields(json: bytes, paths: paths)
            #expect(fields.values(at: ["a", "b", "c", "d"]).compactMap(\.text) == ["kept"])
            #expect(!fields.exists(["x"]) && !fields.exists(["n"]) && !fields.exists(["a", "b", "c", "e"]))
        }
        for broken in [#"{"a":"#, #"{"a":tru}"#, #"{"a":"\u12"}"#, "[1,2", #"{"a" 1}"#] {
            Array(broken.utf8).withUnsafeBufferPointer { bytes in
                #expect(EventFields(json: bytes).root == nil, "\(broken)")
            }
        }
    }

    @Test func anEventOfATypeNoRuleNamesIsNotRead() throws {
        let detector = try Self.detector(
            Self.header + "detection: {s: {type: scim.disabled, scim.disabled.id: x}, condition: s}\n")
        #expect(detector.rules[0].admits(type: "scim.disabled"))
        #expect(!detector.rules[0].admits(type: "login.failed"))
        let anyType = try Self.detector(Self.header + "detection: {s: {actor.type: session}, condition: s}\n")
        #expect(anyType.rules[0].admits(type: "login.failed"))
    }
}
