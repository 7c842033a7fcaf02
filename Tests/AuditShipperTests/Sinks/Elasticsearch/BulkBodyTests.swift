import Testing

@testable import AuditShipper

/// The `_bulk` lines, golden; and its answers read item by item.
@Suite struct BulkBodyTests {
    func event(_ json: String) throws -> AuditEvent {
        try Array(json.utf8).withUnsafeBufferPointer { try PageScanner.event($0) }
    }

    @Test func eachEventIsACreateKeyedByItsIdAndTheEventWholeWithItsTimestamp() throws {
        let body = BulkBody(index: "logs-openai.audit-default")
        var bytes: [UInt8] = []
        let json = #"{"id":"audit_log-1","type":"login.failed","effective_at":1722471046,"actor":{"type":"session"}}"#
        body.append(try event(json), to: &bytes)
        #expect(
            String(decoding: bytes, as: UTF8.self)
                == #"{"create":{"_index":"logs-openai.audit-default","_id":"audit_log-1"}}"# + "\n"
                + #"{"@timestamp":"2024-08-01T00:10:46Z","id":"audit_log-1","type":"login.failed","effective_at":1722471046,"actor":{"type":"session"}}"#
                + "\n")
        #expect(body.size(of: try event(json)) >= bytes.count)
    }

    @Test func aMarkedEventsDocumentCarriesItsRulesLast() throws {
        let body = BulkBody(index: "audit")
        var bytes: [UInt8] = []
        let json = #"{"id":"a","type":"scim.disabled","effective_at":1722471046}"#
        let marked = try event(json).marked(Detection(rules: ["openai-scim-disabled"], level: .high))
        body.append(marked, to: &bytes)
        #expect(
            String(decoding: bytes, as: UTF8.self).split(separator: "\n")[1]
                == #"{"@timestamp":"2024-08-01T00:10:46Z","id":"a","type":"scim.disabled","effective_at":1722471046,"openai_auditd":{"rules":["openai-scim-disabled"],"level":"high"}}"#
        )
        #expect(body.size(of: marked) >= bytes.count)
    }

    @Test func theAnswerIsReadItemByItem() throws {
        let answer = #"""
            {"errors":true,"items":[{"create":{"status":201}},{"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"[x]: version conflict"}}},{"index":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected"}}}]}
            """#
        let reply = try #require(BulkReply.decode(Array(answer.utf8)))
        #expect(reply.errors == true)
        #expect(reply.items?.map { $0.result?.status } == [201, 409, 429])
        #expect(reply.items?[1].result?.error?.words == "version_conflict_engine_exception: [x]: version conflict")
        #expect(
            BulkReply.reason(
                status: 401,
                body: Array(
                    #"{"error":{"type":"security_exception","reason":"unable to authenticate user"},"status":401}"#.utf8
                ))
                == "Elasticsearch does not accept the credentials (check api_key_file, or username and password_file): HTTP 401: security_exception: unable to authenticate user"
        )
        #expect(
            BulkReply.reason(status: 502, body: Array("<html>bad gateway</html>".utf8))
                == "HTTP 502: <html>bad gateway</html>")
    }
}
