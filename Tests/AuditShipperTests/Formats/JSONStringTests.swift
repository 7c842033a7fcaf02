import AuditShipper
import Foundation
import Testing

@Suite struct JSONStringTests {
    @Test(arguments: [
        ("", #""""#), ("audit_log-abc", #""audit_log-abc""#), ("a\"b\\c", #""a\"b\\c""#),
        ("tab\tnl\n\u{01}\u{1F}", #""tab\u0009nl\u000a\u0001\u001f""#), ("é 日本 🚀 \u{2028}", "\"é 日本 🚀 \u{2028}\""),
        ("\"", #""\"""#), ("x\\", #""x\\""#),
    ])
    func escapesOnlyWhatJSONRequires(text: String, literal: String) throws {
        #expect(JSONString.quoted(text) == literal)
        // And it reads back as the same text.
        let parsed = try JSONSerialization.jsonObject(with: Data("[\(literal)]".utf8), options: []) as? [String]
        #expect(parsed == [text])
    }

    @Test(arguments: [Int64.min, Int64.max, 0, -1, 7, 10, 1_795_853_475, -1_000_000_000_000])
    func writesIntegersInDecimal(value: Int64) {
        var out: [UInt8] = Array("x".utf8)
        JSONString.append(integer: value, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "x\(value)")
    }
}
