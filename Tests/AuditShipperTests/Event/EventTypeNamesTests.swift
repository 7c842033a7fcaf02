import Testing

@testable import AuditShipper

/// The event types' table: one string and one number per type, bounded.
@Suite struct EventTypeNamesTests {
    static func name(_ names: EventTypeNames, _ raw: String) -> (text: String, number: UInt32) {
        var raw = raw
        return raw.withUTF8 { bytes in names.name(bytes) { String(decoding: $0, as: UTF8.self) } }
    }

    @Test func eachTypeHasOneNumberWhateverItsLength() {
        let names = EventTypeNames()
        let long = Self.name(names, "service_account.created")
        let short = Self.name(names, "login.failed")
        #expect(long == ("service_account.created", 1) && short == ("login.failed", 2))
        #expect(Self.name(names, "login.failed") == short && Self.name(names, "service_account.created") == long)
        #expect(names.number(of: "login.failed") == 2)
        #expect(names.number(of: "login.succeeded") == 3, "a type first met as text is numbered too")
        #expect(Self.name(names, "login.succeeded").number == 3)
    }

    @Test func theSameTextSentEscapedIsAnotherEntry() {
        let names = EventTypeNames()
        let plain = Self.name(names, "a.b")
        // Keyed by the bytes as sent: the escaped form is decoded once and numbered apart.
        let escaped = Array(#"a\u002eb"#.utf8).withUnsafeBufferPointer { names.name($0) { _ in "a.b" } }
        #expect(plain.number == 1 && escaped.number == 2 && escaped.text == "a.b")
    }

    @Test func pastItsCapacityNewTypesHaveNoNumber() {
        let names = EventTypeNames()
        for index in 0..<EventTypeNames.capacity { _ = Self.name(names, "type.\(index)") }
        #expect(Self.name(names, "type.0").number == 1, "the types held keep theirs")
        #expect(Self.name(names, "one.more") == ("one.more", 0))
        #expect(names.number(of: "one.more") == 0)
    }
}
