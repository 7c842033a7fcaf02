import NIOCore
import Testing

@testable import AuditShipper

/// RELP frames as rsyslog's specification writes them, cut anywhere by the network.
@Suite struct RELPFrameTests {
    func frames(_ text: String, cutAt cuts: [Int] = []) throws -> [RELPFrame] {
        let bytes = Array(text.utf8)
        var buffer = ByteBuffer()
        var frames: [RELPFrame] = []
        var from = 0
        for cut in cuts + [bytes.count] {
            buffer.writeBytes(bytes[from..<cut])
            from = cut
            while let frame = try RELPFrameDecoder.frame(from: &buffer) { frames.append(frame) }
        }
        #expect(buffer.readableBytes == 0, "every byte belongs to a frame")
        return frames
    }

    @Test func readsAnswersWithAndWithoutData() throws {
        let text =
            "1 rsp 53 200 OK\nrelp_version=0\nrelp_software=x\ncommands=syslog\n2 rsp 6 200 OK\n3 rsp 0\n0 serverclose 0\n"
        for cut in 0...text.utf8.count {
            let read = try frames(text, cutAt: [cut])
            #expect(read.map(\.txnr) == [1, 2, 3, 0], "cut at \(cut)")
            #expect(read.map(\.command) == ["rsp", "rsp", "rsp", "serverclose"])
            #expect(read[0].status == 200 && read[0].offers["commands"] == "syslog")
            #expect(read[0].offers["relp_version"] == "0")
            #expect(read[1].status == 200 && read[1].statusText == "OK")
            #expect(read[2].status == nil && read[2].data.isEmpty)
        }
    }

    @Test func aFrameIsWrittenAsTheSpecificationSays() {
        #expect(
            RELPFrame(txnr: 7, command: "syslog", data: Array("<14>1 x".utf8)).bytes
                == Array("7 syslog 7 <14>1 x\n".utf8))
        #expect(RELPFrame(txnr: 8, command: "close", data: []).bytes == Array("8 close 0\n".utf8))
        let error = RELPFrame(txnr: 2, command: "rsp", data: Array("500 queue full".utf8))
        #expect(error.status == 500 && error.statusText == "queue full")
    }

    @Test(arguments: [
        ("HTTP/1.1 400 Bad Request\r\n", "unexpected byte"), ("1 rsp 6 200 OKX", "does not end with a line feed"),
        ("1234567890 rsp 0\n", "transaction number is too long"), ("1 rsp 99999999 x\n", "data length of"),
        (" rsp 0\n", "transaction number is empty"), ("1 rsp 3\n", "no space before the data"),
    ])
    func refusesWhatIsNotRELP(text: String, reason: String) {
        #expect {
            _ = try frames(text)
        } throws: { error in
            "\(error)".contains(reason) && "\(error)".contains("is this a RELP port")
        }
    }
}
