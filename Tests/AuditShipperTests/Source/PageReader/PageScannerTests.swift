import AuditShipper
import AuditSimulator
import Foundation
import Testing

@Suite struct PageScannerTests {
    func scan(_ text: String) throws -> AuditPage { try PageScanner.scan(Array(text.utf8)) }

    @Test func splitsThePageIntoEventsKeepingEachWhole() throws {
        let page = try scan(
            """
            {
              "object": "list",
              "data": [
                {"id": "audit_log-1", "type": "x.unknown_type", "effective_at": 1700000001,
                 "actor": null, "extra": {"nested": [[1, 2], {"deep": [null, true, false, -1.5e3]}]},
                 "text": "quote \\" backslash \\\\ bracket ] pipe | eq = nl \\n Zoë 日本 🚀 \\u00e9 \\ud83d\\ude80"},
                {"type": "login.succeeded", "effective_at": 1700000000, "id": "audit_log-2"}
              ],
              "first_id": "audit_log-1",
              "last_id": "audit_log-2",
              "has_more": true
            }
            """)
        #expect(page.events.map(\.id) == ["audit_log-1", "audit_log-2"])
        #expect(page.events.map(\.type) == ["x.unknown_type", "login.succeeded"])
        #expect(page.events.map(\.effectiveAt) == [1_700_000_001, 1_700_000_000])
        #expect(page.hasMore)
        #expect(page.firstID == "audit_log-1")
        #expect(page.lastID == "audit_log-2")
        let first = page.events[0].jsonString
        #expect(!first.contains("\n"), "an event is one line")
        #expect(
            first.hasPrefix(#"{"id":"audit_log-1","type":"x.unknown_type","effective_at":1700000001,"actor":null,"#))
        #expect(first.contains(#""extra":{"nested":[[1,2],{"deep":[null,true,false,-1.5e3]}]}"#))
        #expect(first.contains(#""quote \" backslash \\ bracket ] pipe | eq = nl \n Zoë 日本 🚀 \u00e9 \ud83d\ude80""#))
        // Meaning is unchanged: both parse to the same object.
        let original =
            try JSONSerialization.jsonObject(
                with: Data(
                    #"{"id": "audit_log-1", "type": "x.unknown_type", "effective_at": 1700000001, "actor": null, "extra": {"nested": [[1, 2], {"deep": [null, true, false, -1.5e3]}]}, "text": "quote \" backslash \\ bracket ] pipe | eq = nl \n Zoë 日本 🚀 \u00e9 \ud83d\ude80"}"#
                        .utf8)) as? NSDictionary
        let forwarded = try JSONSerialization.jsonObject(with: Data(page.events[0].json)) as? NSDictionary
        #expect(original == forwarded)
    }

    @Test func keepsCompactEventsByteForByte() throws {
        let event = #"{"id":"a","type":"t","effective_at":5,"s":"  spaced  inside  "}"#
        let page = try scan(#"{"data":[\#(event)],"has_more":false,"first_id":null,"last_id":null}"#)
        #expect(page.events[0].jsonString == event)
        #expect(page.firstID == nil && page.lastID == nil)
    }

    @Test func decodesEscapedIdentifiers() throws {
        let page = try scan(#"{"data":[{"id":"a\u0062\"c","type":"t\/u","effective_at":1}],"has_more":false}"#)
        #expect(page.events[0].id == "ab\"c")
        #expect(page.events[0].type == "t/u")
    }

    /// An id is held as bytes (`HashedID`); whichever way the page wrote it, it must equal the
    /// id the state file gives back as text, or an event would be sent again after a restart.
    @Test func anIdEqualsItsTextHoweverThePageWroteIt() throws {
        let long = "audit_log-" + String(repeating: "x", count: 60)  // past the bytes kept inline
        let ids = [
            #"audit_log-C7C0QjFGRIaZskr6ZCBkC6kM"#: "audit_log-C7C0QjFGRIaZskr6ZCBkC6kM",
            #"audit_log-A\/"#: "audit_log-A/",
            long: long,
            "audit_log-Zoë": "audit_log-Zoë",
        ]
        for (written, text) in ids {
            let page = try scan(#"{"data":[{"id":"\#(written)","type":"t","effective_at":1}],"has_more":false}"#)
            let read = page.events[0].hashedID
            #expect(read == HashedID(text), "\(written)")
            #expect(read.hashValue == HashedID(text).hashValue, "\(written)")
            #expect(read.text == text && page.events[0].id == text)
            #expect(read != HashedID(text + "0") && read != HashedID(String(text.dropLast())))
        }
        // Invalid UTF-8 is replaced, as the text written to the state file has it.
        var bytes = Array(#"{"data":[{"id":"audit_log-"#.utf8) + [0xFF, 0x41]
        bytes += Array(#"","type":"t","effective_at":1}],"has_more":false}"#.utf8)
        let page = try PageScanner.scan(bytes)
        let text = page.events[0].id
        #expect(text == "audit_log-\u{FFFD}A")
        #expect(page.events[0].hashedID == HashedID(text))
    }

    @Test func acceptsAFractionalEffectiveAt() throws {
        let page = try scan(#"{"data":[{"id":"a","type":"t","effective_at":1700000000.75}],"has_more":false}"#)
        #expect(page.events[0].effectiveAt == 1_700_000_000)
    }

    /// The integer forms are read without making a string of them; every other number form
    /// through the text. (Read as one event, as a sink's line is: on a page, a time at 0 or
    /// before is set aside, `setsAsideAnItemThatIsNoEvent`.)
    @Test(
        arguments: [
            ("0", 0), ("-5", -5), ("123456789012345678", 123_456_789_012_345_678),
            ("-123456789012345678", -123_456_789_012_345_678), ("9223372036854775807", Int64.max),
            ("-9223372036854775808", Int64.min), ("1e3", 1000), ("-1.5", -2), ("17E+2", 1700),
        ] as [(String, Int64)])
    func readsEveryNumberFormOfEffectiveAt(text: String, value: Int64) throws {
        let item = #"{"id":"a","type":"t","effective_at":\#(text)}"#
        let event = try Array(item.utf8).withUnsafeBufferPointer { try PageScanner.event($0) }
        #expect(event.effectiveAt == value)
    }

    /// An item that is JSON but no event the cycle can place is set aside with its bytes and
    /// what is wrong with it, and the page goes on: the items around it are read.
    @Test(
        arguments: [
            (#"{"type":"t","effective_at":1700000000}"#, #"it has no "id""#, nil),
            (#"{"id":"","type":"t","effective_at":1700000000}"#, #"it has no "id""#, nil),
            (#"{"id":7,"type":"t","effective_at":1700000000}"#, "its id is not a string", nil),
            (#"{"id":"p","effective_at":1700000000}"#, #"it has no "type""#, "p"),
            (#"{"id":"p","type":["t"],"effective_at":1700000000}"#, "its type is not a string", "p"),
            (#"{"id":"p","type":"t"}"#, #"it has no "effective_at""#, "p"),
            (#"{"id":"p","type":"t","effective_at":"1700000000"}"#, "its effective_at is not a number", "p"),
            (#"{"id":"p","type":"t","effective_at":{"s":1}}"#, "its effective_at is not a number", "p"),
            (#"{"id":"p","type":"t","effective_at":99999999999999999999}"#, "its effective_at is out of range", "p"),
            (#"{"id":"p","type":"t","effective_at":0}"#, "its effective_at 0 is not a time after 1970", "p"),
            (#"{"id":"p","type":"t","effective_at":-5}"#, "its effective_at -5 is not a time after 1970", "p"),
            ("1", "it is not an object", nil), (#""audit_log-x""#, "it is not an object", nil),
            ("null", "it is not an object", nil), ("[]", "it is not an object", nil),
        ] as [(String, String, String?)])
    func setsAsideAnItemThatIsNoEvent(item: String, reason: String, id: String?) throws {
        let before = #"{"id":"a","type":"t","effective_at":1700000001}"#
        let after = #"{"id":"b","type":"t","effective_at":1700000000}"#
        let page = try scan(#"{"data":[\#(before), \#(item) ,\#(after)],"has_more":true}"#)
        #expect(page.events.map(\.id) == ["a", "b"])
        #expect(page.hasMore)
        #expect(page.unreadable.count == 1)
        let unreadable = try #require(page.unreadable.first)
        #expect(unreadable.index == 1)
        #expect(unreadable.reason == reason)
        #expect(unreadable.id == id)
        // Whole, as sent (insignificant whitespace dropped, as from an event).
        #expect(String(decoding: unreadable.json, as: UTF8.self) == item)
        // A line read back from a sink's file is held to the same shape, but throws: a sink
        // never wrote such a line, so it is not one of ours. (A time at 0 or before is read:
        // placing events in time is the page's concern, and earlier versions wrote them.)
        guard !reason.contains("after 1970") else { return }
        #expect(throws: MalformedPage.self) {
            try Array(item.utf8).withUnsafeBufferPointer { try PageScanner.event($0) }
        }
    }

    /// The page's last item decides where the next page continues when there is no `last_id`,
    /// readable or not: else the walk would ask for the unreadable item again and again.
    @Test func theLastItemsIDContinuesThePageWhateverItHolds() throws {
        let page = try scan(
            #"{"data":[{"id":"a","type":"t","effective_at":2},{"id":"z","type":"t","effective_at":"x"}],"has_more":true}"#
        )
        #expect(page.lastListedID == "z")
        let readable = try scan(
            #"{"data":[{"id":"z","type":"t","effective_at":"x"},{"id":"a","type":"t","effective_at":2}],"has_more":true}"#
        )
        #expect(readable.lastListedID == "a")
    }

    /// Whitespace inside an unreadable item is dropped as in an event, and the compaction
    /// buffer starts afresh for the next item.
    @Test func anUnreadableItemIsCompactedLikeAnEvent() throws {
        let page = try scan(
            "{\"data\":[ { \"id\" : \"p\" , \"type\":\"t\", \"effective_at\": \"soon\" } , {\"id\":\"b\",\"type\":\"t\",\"effective_at\":3}],\"has_more\":false}"
        )
        #expect(
            String(decoding: page.unreadable[0].json, as: UTF8.self) == #"{"id":"p","type":"t","effective_at":"soon"}"#)
        #expect(page.events[0].jsonString == #"{"id":"b","type":"t","effective_at":3}"#)
    }

    @Test func emptyPage() throws {
        let page = try scan(#"{"object":"list","data":[],"first_id":null,"last_id":null,"has_more":false}"#)
        #expect(page.events.isEmpty && !page.hasMore)
    }

    @Test(arguments: [
        ("", "unexpected end"),
        ("<html>502</html>", "expected a JSON object"),
        (#"{"object":"list","has_more":false}"#, #"no "data""#),
        (#"{"data":[]}"#, #"no "has_more""#),
        (#"{"data":[{"id":"a","type":"t","effective_at":1}],"has_more":false"#, "unexpected end"),
        (#"{"data":[{"id":"a","type":"t","effective_at":1}],"has_more":"yes"}"#, "has_more is not a boolean"),
        (#"{"data":{},"has_more":false}"#, "to be an array"),
        (#"{"data":[],"has_more":false} trailing"#, "unexpected bytes after"),
        (#"{"data":[{"id":"a","type":"t","effective_at":1,"x":"bad \q"}],"has_more":false}"#, "invalid escape"),
        (
            "{\"data\":[{\"id\":\"a\",\"type\":\"t\",\"effective_at\":1,\"x\":\"raw\nnewline\"}],\"has_more\":false}",
            "control character"
        ),
        (#"{"data":[{"id":"a","type":"t","effective_at":01}],"has_more":false}"#, "leading zero"),
        (#"{"data":[{"id":"a","type":"t","effective_at":1,"x":tru}],"has_more":false}"#, "invalid literal"),
        (#"{"data":[{"id":"a","type":"t","effective_at":1,}],"has_more":false}"#, "expected a string"),
    ])
    func rejectsMalformedPagesWithAReason(input: String, reason: String) {
        #expect {
            try scan(input)
        } throws: { error in
            "\(error)".contains(reason)
        }
    }

    @Test func findsEscapesAndControlCharactersAtEveryAlignment() throws {
        for offset in 0..<24 {
            let padding = String(repeating: "a", count: offset)
            let text = "\(padding)\\\"q\\\\é\(padding)"
            let page = try scan(#"{"data":[{"id":"\#(text)","type":"t","effective_at":1}],"has_more":false}"#)
            #expect(page.events[0].id == "\(padding)\"q\\é\(padding)")
            let raw =
                "{\"data\":[{\"id\":\"\(padding)\u{01}\(padding)\",\"type\":\"t\",\"effective_at\":1}],\"has_more\":false}"
            #expect(throws: MalformedPage.self) { try scan(raw) }
        }
    }

    @Test func compactsWhitespaceBetweenEveryToken() throws {
        let page = try scan(
            "{ \"data\" :\n[ {\t\"id\" : \"a b\" ,\r\n \"type\":\"t\", \"effective_at\" : 1 , \"x\" : [ 1 , { } , [ ] ] } ] , \"has_more\" : false }"
        )
        #expect(page.events[0].jsonString == #"{"id":"a b","type":"t","effective_at":1,"x":[1,{},[]]}"#)
    }

    /// Whitespace runs of every length, wherever JSON allows them, are dropped and nothing else
    /// is: checked against the compact text they were put into, events of every size, each
    /// page ending right after its last event so the last pieces are read near the page's end.
    @Test func compactsRandomWhitespaceToTheTextItWasAddedTo() throws {
        let compact = [
            #"{"id":"a","type":"t","effective_at":1}"#,
            #"{"id":"audit_log-0123456789abcdef","type":"api_key.created","effective_at":1700000000,"#
                + #""actor":{"type":"session","session":{"user":{"id":"u","email":"a b@example.com"},"#
                + #""ip_address":"203.0.113.7"}},"x":[1,-2.5e3,true,false,null,[],{},"sp ace \" \\ \u00e9"]}"#,
            #"{"effective_at":7,"type":"t","id":"long-\#(String(repeating: "0123456789", count: 5))","n":[[[{}]]]}"#,
        ]
        let spaces: [UInt8] = [0x20, 0x0A, 0x0D, 0x09]
        let structural = Set("{}[]:,".utf8)
        var random = SeededRandom(seed: 12)
        for round in 0..<300 {
            let event = compact[round % compact.count]
            var spaced: [UInt8] = []
            var inString = false
            var escaped = false
            var previous: UInt8 = 0
            for byte in event.utf8 {
                // Between tokens: next to a structural byte, never inside a string or a number.
                let between = structural.contains(byte) || byte == UInt8(ascii: "\"") || structural.contains(previous)
                if !inString, between, Int.random(in: 0..<2, using: &random) == 0 {
                    let run = Int.random(in: 1...(Bool.random(using: &random) ? 3 : 40), using: &random)
                    spaced += (0..<run).map { _ in spaces.randomElement(using: &random)! }
                }
                spaced.append(byte)
                previous = inString ? 0 : byte
                if escaped {
                    escaped = false
                } else if inString, byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString.toggle()
                }
            }
            let page = try PageScanner.scan(Array(#"{"has_more":false,"data":["#.utf8) + spaced + Array("]}".utf8))
            #expect(page.events[0].jsonString == event, "round \(round): \(String(decoding: spaced, as: UTF8.self))")
        }
    }

    /// The values nobody decodes are still validated, at every nesting level, and compacted.
    @Test(arguments: [
        (#"{ "a" : [ 1 , { "b" : [ ] , "c" : { } } , [ [ "x" ] ] ] }"#, #"{"a":[1,{"b":[],"c":{}},[["x"]]]}"#),
        (#"[ true , false , null , -0.5E+3 , "s" ]"#, #"[true,false,null,-0.5E+3,"s"]"#),
        (#"{"k":{"k":{"k":{"k":[[[[{"k":"\u00e9\n"}]]]]}}}}"#, #"{"k":{"k":{"k":{"k":[[[[{"k":"\u00e9\n"}]]]]}}}}"#),
        (#""plain""#, #""plain""#),
    ])
    func skipsAndCompactsNestedValues(value: String, compact: String) throws {
        let page = try scan(#"{"data":[{"id":"a","x":\#(value),"type":"t","effective_at":1}],"has_more":false}"#)
        #expect(page.events[0].jsonString == #"{"id":"a","x":\#(compact),"type":"t","effective_at":1}"#)
    }

    @Test(arguments: [
        (#"[1,]"#, "unexpected byte"), (#"{"a":1,}"#, "expected a member name"), (#"{"a" 1}"#, "expected ':'"),
        (#"{1:2}"#, "expected a member name"), (#"[}"#, "unexpected byte"), (#"{"a":1]"#, "expected ',' or '}'"),
        (#"[1}"#, "expected ',' or ']'"), (#"[[]"#, "expected ',' or ']'"), (#"[1 2]"#, "expected ',' or ']'"),
        (#"{"a":1 "b":2}"#, "expected ',' or '}'"), (#"-"#, "invalid number"), (#"1."#, "invalid number"),
        (#".5"#, "unexpected byte"), (#"1e"#, "invalid number"), (#""\u12""#, #"invalid \u escape"#),
        (#"[nul]"#, "invalid literal"), (#"{"a":}"#, "unexpected byte"),
    ])
    func rejectsMalformedNestedValues(value: String, reason: String) {
        #expect {
            try scan(#"{"data":[{"id":"a","type":"t","effective_at":1,"x":\#(value)}],"has_more":false}"#)
        } throws: { error in
            "\(error)".contains(reason)
        }
    }

    @Test func acceptsNestingUpToTheLimit() throws {
        // The event object is level 1 and its member's value level 2: 510 more brackets fit.
        let deep = String(repeating: "[", count: 510) + String(repeating: "]", count: 510)
        let page = try scan(#"{"data":[{"id":"a","type":"t","effective_at":1,"x":\#(deep)}],"has_more":false}"#)
        #expect(page.events[0].jsonString.contains(deep))
        let deeper = "[" + deep + "]"
        #expect(throws: MalformedPage.self) {
            try scan(#"{"data":[{"id":"a","type":"t","effective_at":1,"x":\#(deeper)}],"has_more":false}"#)
        }
    }

    @Test func rejectsNestingDeeperThanTheLimit() {
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(throws: MalformedPage.self) {
            try scan(#"{"data":[{"id":"a","type":"t","effective_at":1,"x":\#(deep)}],"has_more":false}"#)
        }
    }
}
