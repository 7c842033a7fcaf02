import AuditShipper
import AuditSimulator
import Foundation
import Testing

@Suite struct EventSummaryTests {
    func event(_ json: String) throws -> AuditEvent {
        try PageScanner.scan(Array(#"{"data":[\#(json)],"has_more":false}"#.utf8)).events[0]
    }

    func message(_ json: String) throws -> String {
        let event = try event(json)
        return EventSummary.message(type: event.type, details: EventDetails(event))
    }

    static let session =
        #""actor":{"type":"session","session":{"user":{"id":"user-1","email":"alice@example.com"},"ip_address":"203.0.113.7"}}"#

    @Test func goldenLinesForEachFamily() throws {
        let cases: [(String, String)] = [
            (
                #"{"id":"a","type":"api_key.created","effective_at":1,"project":{"id":"proj_abc","name":"P"},\#(Self.session),"api_key.created":{"id":"key_xyz","data":{"scopes":["api.model.request"]}}}"#,
                "api_key.created by alice@example.com (session 203.0.113.7) in proj_abc: key_xyz"
            ),
            (
                #"{"id":"a","type":"api_key.deleted","effective_at":1,"actor":{"type":"api_key","api_key":{"id":"key_1","type":"service_account","service_account":{"id":"svc_9"}}},"api_key.deleted":{"id":"key_2"}}"#,
                "api_key.deleted by service account svc_9 (api key key_1): key_2"
            ),
            (
                #"{"id":"a","type":"user.updated","effective_at":1,"actor":{"type":"api_key","api_key":{"id":"key_1","type":"user","user":{"id":"user-2","email":"bob@example.com"}}},"user.updated":{"id":"user-3"}}"#,
                "user.updated by api key key_1 of bob@example.com: user-3"
            ),
            (
                #"{"id":"a","type":"invite.sent","effective_at":1,\#(Self.session),"invite.sent":{"id":"invite-1","data":{"email":"carol@example.com","role":"reader"}}}"#,
                "invite.sent by alice@example.com (session 203.0.113.7): invite-1 (carol@example.com as reader)"
            ),
            (
                #"{"id":"a","type":"login.failed","effective_at":1,\#(Self.session),"login.failed":{"error_code":"invalid_password","error_message":"Wrong\npassword"}}"#,
                "login.failed by alice@example.com (session 203.0.113.7): Wrong password"
            ),
            (
                #"{"id":"a","type":"login.succeeded","effective_at":1,\#(Self.session)}"#,
                "login.succeeded by alice@example.com (session 203.0.113.7)"
            ),
            (
                #"{"id":"a","type":"project.created","effective_at":1,\#(Self.session),"project.created":{"id":"proj_2","data":{"name":"Prod","title":"Production"}}}"#,
                "project.created by alice@example.com (session 203.0.113.7): proj_2 (Prod)"
            ),
            (
                #"{"id":"a","type":"role.created","effective_at":1,\#(Self.session),"role.created":{"id":"role_1","role_name":"Auditor"}}"#,
                "role.created by alice@example.com (session 203.0.113.7): role_1 (Auditor)"
            ),
            (
                #"{"id":"a","type":"certificates.activated","effective_at":1,\#(Self.session),"certificates.activated":{"certificates":[{"id":"cert_1","name":"c"}]}}"#,
                "certificates.activated by alice@example.com (session 203.0.113.7)"
            ),
            (
                #"{"id":"a","type":"tenant.user.added","effective_at":1,\#(Self.session),"tenant.user.added":{"id":"tu_1","anything":{"x":1}}}"#,
                "tenant.user.added by alice@example.com (session 203.0.113.7): tu_1"
            ),
            (
                #"{"id":"a","type":"brand.new_type","effective_at":1,"actor":null,"brand.new_type":"not an object"}"#,
                "brand.new_type"
            ),
        ]
        for (json, expected) in cases {
            #expect(try message(json) == expected)
        }
    }

    @Test func priorities() {
        #expect(EventSummary.priority(type: "login.failed") == 4)
        #expect(EventSummary.priority(type: "api_key.deleted") == 4)
        #expect(EventSummary.priority(type: "tenant.sso_connection.deleted") == 4)
        #expect(EventSummary.priority(type: "login.succeeded") == 6)
        #expect(EventSummary.priority(type: "logout.succeeded") == 6)
        #expect(EventSummary.priority(type: "api_key.created") == 5)
        #expect(EventSummary.priority(type: "brand.new_type") == 5)
    }

    /// Every one of the 145 types, generated with tricky strings: a readable single line, the
    /// right priority, and journal fields journald will keep.
    @Test(arguments: EventGenerator.types)
    func everyTypeHasALineAPriorityAndValidFields(type: String) throws {
        var generator = EventGenerator(seed: 3, trickyRate: 1)
        let simulated = generator.make(type: type, at: 1_700_000_000, tricky: true)
        let event = try PageScanner.scan(EventStore.body(EventStore.Page(items: [simulated], hasMore: false))).events[0]
        let details = EventDetails(event)
        let line = EventSummary.message(type: type, details: details)
        #expect(line.hasPrefix(type))
        #expect(!line.unicodeScalars.contains { $0.value < 0x20 }, "one line")
        if let who = details.actorEmail ?? details.serviceAccountID { #expect(line.contains(who)) }
        if let resource = details.resourceID { #expect(line.contains(resource)) }
        let expected =
            type.hasSuffix(".failed") || type.hasSuffix(".deleted")
            ? 4 : type.hasSuffix("in.succeeded") || type == "logout.succeeded" ? 6 : 5
        #expect(EventSummary.priority(type: type) == expected)
        let fields = JournalFields.fields(for: event, identifier: "openai-auditd")
        #expect(fields.allSatisfy { JournalFields.isValidName($0.name) })
        #expect(fields.allSatisfy { !$0.value.isEmpty }, "absent fields are left out, not sent empty")
        #expect(fields.last?.name == "OPENAI_EVENT_JSON" && fields.last?.value == event.json)
        #expect(Set(fields.map { $0.name }).count == fields.count)
    }

    @Test func journalFieldNamesFollowJournaldsRules() {
        #expect(JournalFields.isValidName("OPENAI_ACTOR_EMAIL"))
        #expect(!JournalFields.isValidName("_OPENAI"))
        #expect(!JournalFields.isValidName("1OPENAI"))
        #expect(!JournalFields.isValidName("openai"))
        #expect(!JournalFields.isValidName("OPENAI-X"))
        #expect(!JournalFields.isValidName(String(repeating: "A", count: 65)))
        #expect(JournalFields.isValidName(String(repeating: "A", count: 64)))
        #expect(JournalFields.messageID.count == 32 && JournalFields.messageID.allSatisfy(\.isHexDigit))
    }

    @Test func absentSourcesAreLeftOut() throws {
        let bare = try event(#"{"id":"a","type":"x.y","effective_at":5}"#)
        let names = JournalFields.fields(for: bare, identifier: "id").map { $0.name }
        #expect(
            names == [
                "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "MESSAGE_ID", "OPENAI_AUDIT_ID", "OPENAI_EVENT_TYPE",
                "OPENAI_EFFECTIVE_AT", "OPENAI_EVENT_JSON",
            ])
    }
}
