import Foundation

/// What HEC answers: `{"text":"Success","code":0,"ackId":7}` to an event post,
/// `{"acks":{"7":true}}` to an ack query, `{"text":"...","code":N}` to an error.
struct HECReply: Decodable {
    var text: String?
    var code: Int?
    var ackId: Int?
    var acks: [String: Bool]?

    init(_ body: [UInt8]) {
        self = (try? JSONDecoder().decode(HECReply.self, from: Data(body))) ?? HECReply()
    }

    init(text: String? = nil, code: Int? = nil) {
        self.text = text
        self.code = code
    }

    /// Why HEC refused a request, in the words an operator acts on; `status` and Splunk's own
    /// text are kept so the reason can be looked up.
    func reason(status: Int, acknowledgements: Bool) -> String {
        let said = "HTTP \(status)" + (code.map { ", code \($0)" } ?? "") + (text.map { ": \($0)" } ?? "")
        let meaning: String? =
            switch (status, code) {
            case (_, 1): "the HEC token is disabled in Splunk"
            case (_, 2): "Splunk wants a token (none was sent)"
            case (_, 3), (_, 4), (401, _), (403, _): "Splunk does not accept the HEC token (wrong or deleted)"
            case (_, 7): "the index does not exist or the token may not write to it (check index:)"
            case (_, 10):
                "the token has indexer acknowledgement on but acknowledgements is false here: set acknowledgements: true (or turn acknowledgement off for the token)"
            case (_, 11): "Splunk does not know this sink's channel"
            case (_, 14):
                "acknowledgements is true here but indexer acknowledgement is off for the token: turn it on for the token in Splunk, or set acknowledgements: false"
            case (_, 9), (503, _): "Splunk is busy (its queues are full)"
            case (413, _): "the request is larger than Splunk accepts (max_content_length): lower max_request_bytes"
            case (404, _): "there is no HTTP Event Collector at this URL (is HEC enabled, and the port right?)"
            default: nil
            }
        guard let meaning else { return said }
        return "\(meaning) (\(said))"
    }
}
