import Foundation

/// What `_bulk` answers: `{"errors":bool,"items":[{"create":{"_id":…,"status":201,
/// "error":{"type":…,"reason":…}}}]}`, one item per action in the order sent; or, for the
/// whole request, `{"error":{"type":…,"reason":…},"status":N}`.
struct BulkReply: Decodable {
    struct Item: Decodable {
        struct Result: Decodable {
            var status: Int
            var error: Failure?
        }
        /// The action's result, whatever the action was called.
        var result: Result?

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: AnyKey.self)
            result = try container.allKeys.first.map { try container.decode(Result.self, forKey: $0) }
        }
    }

    struct Failure: Decodable {
        var type: String?
        var reason: String?
        var words: String { [type, reason].compactMap { $0 }.joined(separator: ": ") }
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    var errors: Bool?
    var items: [Item]?
    var error: Failure?

    static func decode(_ body: [UInt8]) -> BulkReply? { try? JSONDecoder().decode(BulkReply.self, from: Data(body)) }

    /// A whole request's refusal in words: the server's error type and reason, or its text.
    static func reason(status: Int, body: [UInt8]) -> String {
        let said: String
        if let failure = decode(body)?.error {
            said = failure.words
        } else {
            let text = String(decoding: body.prefix(300), as: UTF8.self)
            said = text.isEmpty ? "(empty body)" : text
        }
        let meaning: String? =
            switch status {
            case 401:
                "Elasticsearch does not accept the credentials (check api_key_file, or username and password_file)"
            case 403: "the credentials may not write to this index (the role needs create_doc on it)"
            case 413:
                "the request is larger than Elasticsearch accepts (http.max_content_length): lower max_request_bytes"
            case 429: "Elasticsearch is rejecting requests for now (429)"
            default: nil
            }
        return (meaning.map { "\($0): " } ?? "") + "HTTP \(status): " + said.replacingAll("\n", with: " ")
    }
}
