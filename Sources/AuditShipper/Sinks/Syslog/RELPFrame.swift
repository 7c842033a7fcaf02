import NIOCore

/// One RELP frame (`TXNR SP COMMAND SP DATALEN [SP DATA] LF`, rsyslog's RELP specification):
/// a command the client sends, or the collector's `rsp` to one, or its `serverclose`.
struct RELPFrame: Sendable, Equatable {
    /// 1 to 999,999,999; 0 for `serverclose`, which answers nothing.
    var txnr: Int
    var command: String
    var data: [UInt8]

    static let maxTXNR = 999_999_999
    /// The largest DATALEN accepted from a collector: a response is a status line and offers.
    static let maxResponseData = 64 << 10

    /// The frame's bytes as sent.
    var bytes: [UInt8] {
        var out = Array("\(txnr) \(command) \(data.count)".utf8)
        if !data.isEmpty {
            out.append(0x20)
            out.append(contentsOf: data)
        }
        out.append(0x0A)
        return out
    }

    /// The status code an `rsp` starts with (`200 OK`, `500 …`), nil when there is none.
    var status: Int? {
        let digits = data.prefix { $0 >= 0x30 && $0 <= 0x39 }
        guard digits.count == 3 else { return nil }
        return Int(String(decoding: digits, as: UTF8.self))
    }

    /// The text of an `rsp` after its status code, up to its first line's end.
    var statusText: String {
        let line = data.prefix { $0 != 0x0A }
        return String(decoding: line.dropFirst(4), as: UTF8.self)
    }

    /// The `name=value` offers of an `open` or its `rsp`, after the status line for an `rsp`.
    var offers: [String: String] {
        var result: [String: String] = [:]
        for line in data.split(separator: 0x0A).dropFirst(command == "rsp" ? 1 : 0) {
            let text = String(decoding: line, as: UTF8.self)
            guard let equals = text.firstIndex(of: "=") else {
                result[text] = ""
                continue
            }
            result[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        return result
    }
}
