import CZlib
import Testing

@testable import AuditShipper

/// The HEC objects of a request body, golden; and the gzip they travel in.
@Suite struct HECEnvelopeTests {
    func event(_ json: String) throws -> AuditEvent {
        try Array(json.utf8).withUnsafeBufferPointer { try PageScanner.event($0) }
    }

    @Test func eachEventIsOneObjectCarryingItWhole() throws {
        var settings = Configuration.SplunkHECSettings(url: "https://splunk.example.com:8088")
        settings.index = "openai"
        settings.source = "auditd \"one\""
        let envelope = HECEnvelope(settings: settings, host: "web-1")
        let json =
            #"{"id":"audit_log-1","type":"api_key.created","effective_at":1722471046,"project":{"id":"proj_abc"},"actor":{"type":"session","session":{"user":{"id":"u","email":"al\"ice@example.com"}}}}"#
        var body: [UInt8] = []
        envelope.append(try event(json), to: &body)
        envelope.append(try event(#"{"id":"audit_log-2","type":"login.failed","effective_at":5}"#), to: &body)
        let text = String(decoding: body, as: UTF8.self)
        #expect(
            text
                == #"{"time":1722471046,"host":"web-1","source":"auditd \"one\"","sourcetype":"openai:audit","index":"openai","event":"#
                + json
                + #","fields":{"openai_event_type":"api_key.created","openai_actor_email":"al\"ice@example.com","openai_project_id":"proj_abc"}}"#
                + "\n"
                + #"{"time":5,"host":"web-1","source":"auditd \"one\"","sourcetype":"openai:audit","index":"openai","event":{"id":"audit_log-2","type":"login.failed","effective_at":5},"fields":{"openai_event_type":"login.failed"}}"#
                + "\n")
        #expect(envelope.size(of: try event(json)) >= text.split(separator: "\n")[0].utf8.count + 1)
    }

    @Test func aMarkedEventCarriesItsRulesAsIndexedFields() throws {
        let envelope = HECEnvelope(settings: Configuration.SplunkHECSettings(url: "https://s:8088"), host: "h")
        let marked = try event(#"{"id":"a","type":"login.failed","effective_at":5}"#).marked(
            Detection(rules: ["openai-credential-stuffing", "acme-\"x\""], level: .medium))
        var body: [UInt8] = []
        envelope.append(marked, to: &body)
        #expect(
            String(decoding: body, as: UTF8.self).hasSuffix(
                #","fields":{"openai_event_type":"login.failed","openai_rules":["openai-credential-stuffing","acme-\"x\""],"openai_rule_level":"medium"}}"#
                    + "\n"))
        #expect(envelope.size(of: marked) >= body.count)
    }

    @Test func gzipIsWhatZlibInflatesBack() throws {
        let input = Array(String(repeating: "{\"event\":\"x\"}\n", count: 5000).utf8)
        let compressed = Gzip.compress(input)
        #expect(compressed.count < input.count / 10)
        #expect(compressed.prefix(2) == [0x1F, 0x8B], "a gzip header")
        var stream = z_stream()
        #expect(inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK)
        defer { inflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: input.count + 1)
        let status = compressed.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { out in
                stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
                stream.avail_in = uInt(source.count)
                stream.next_out = out.baseAddress
                stream.avail_out = uInt(out.count)
                return inflate(&stream, Z_FINISH)
            }
        }
        #expect(status == Z_STREAM_END)
        #expect(Array(output.prefix(Int(stream.total_out))) == input)
        #expect(Gzip.compress([]).count > 0, "an empty body is still a gzip stream")
    }

    @Test func theReplyNamesWhatAnOperatorActsOn() {
        #expect(
            HECReply(Array(#"{"text":"Invalid token","code":4}"#.utf8)).reason(status: 403, acknowledgements: true)
                == "Splunk does not accept the HEC token (wrong or deleted) (HTTP 403, code 4: Invalid token)")
        #expect(
            HECReply(Array(#"{"text":"ACK is disabled","code":14}"#.utf8)).reason(status: 400, acknowledgements: true)
                .hasPrefix("acknowledgements is true here but indexer acknowledgement is off for the token"))
        #expect(HECReply(Array("<html>".utf8)).reason(status: 502, acknowledgements: true) == "HTTP 502")
        #expect(HECReply(Array(#"{"acks":{"3":true,"4":false}}"#.utf8)).acks == ["3": true, "4": false])
    }
}
