import NIOCore

/// Cuts the collector's byte stream into `RELPFrame`s. Anything else is an error that names
/// what was wrong: the peer is not a RELP server (a plain syslog port, an HTTP server).
struct RELPFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = RELPFrame

    struct Malformed: Error, CustomStringConvertible {
        let reason: String
        var description: String { "the collector's answer is not RELP (\(reason)): is this a RELP port (imrelp)?" }
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try Self.frame(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }

    /// The first whole frame of `buffer`, consumed; nil when more bytes are needed.
    static func frame(from buffer: inout ByteBuffer) throws(Malformed) -> RELPFrame? {
        let view = buffer.readableBytesView
        var index = view.startIndex
        /// A run of bytes up to the next space (or LF, for DATALEN 0), at most `limit` long.
        func field(_ what: String, limit: Int, digits: Bool) throws(Malformed) -> String? {
            let start = index
            while index < view.endIndex, view[index] != 0x20, view[index] != 0x0A {
                let c = view[index]
                let ok = digits ? (c >= 0x30 && c <= 0x39) : (c >= 0x61 && c <= 0x7A || c >= 0x41 && c <= 0x5A)
                guard ok else { throw Malformed(reason: "unexpected byte 0x\(String(c, radix: 16)) in its \(what)") }
                index += 1
                guard index - start <= limit else { throw Malformed(reason: "its \(what) is too long") }
            }
            guard index < view.endIndex else { return nil }
            guard index > start else { throw Malformed(reason: "its \(what) is empty") }
            return String(decoding: view[start..<index], as: UTF8.self)
        }
        guard let txnr = try field("transaction number", limit: 9, digits: true) else { return nil }
        guard view[index] == 0x20 else { throw Malformed(reason: "no command after the transaction number") }
        index += 1
        guard let command = try field("command", limit: 32, digits: false) else { return nil }
        guard view[index] == 0x20 else { throw Malformed(reason: "no length after the command") }
        index += 1
        guard let lengthText = try field("data length", limit: 9, digits: true) else { return nil }
        let length = Int(lengthText)!
        guard length <= RELPFrame.maxResponseData else {
            throw Malformed(reason: "a data length of \(length) bytes")
        }
        var data: [UInt8] = []
        if length > 0 {
            guard view[index] == 0x20 else { throw Malformed(reason: "no space before the data") }
            index += 1
            guard view.endIndex - index >= length + 1 else { return nil }
            data = Array(view[index..<(index + length)])
            index += length
        } else if view[index] == 0x20 {
            // Some senders put the separator before empty data too.
            index += 1
            guard index < view.endIndex else { return nil }
        }
        guard view[index] == 0x0A else { throw Malformed(reason: "the frame does not end with a line feed") }
        index += 1
        buffer.moveReaderIndex(forwardBy: index - view.startIndex)
        return RELPFrame(txnr: Int(txnr)!, command: command, data: data)
    }
}
