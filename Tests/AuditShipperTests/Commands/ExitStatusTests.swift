import AuditShipper
import Testing

/// The sysexits code of each kind of failure, as the README's table and the unit's
/// `RestartPreventExitStatus` rely on.
@Suite struct ExitStatusTests {
    struct Unexpected: Error, CustomStringConvertible {
        var description: String { "something unexpected" }
    }

    @Test func eachFailureHasItsCode() {
        let cases: [(any Error, Int32, String)] = [
            (ConfigurationError.noAdminKey, 78, "no admin key"),
            (UpstreamError.keyRejected(status: 401, message: "bad key"), 77, "bad key"),
            (
                UpstreamError.retriesExhausted(attempts: 3, last: .keyRejected(status: 403, message: "no")), 77,
                "gave up after 3"
            ),
            (
                UpstreamError.badRequest(status: 400, message: "unknown parameter tenant_only"), 78,
                "include_tenant_events"
            ),
            (UpstreamError.badRequest(status: 400, message: "invalid project_ids"), 78, "check api.filters"),
            // A gateway's 404 is not the configuration's: 78 would keep the unit down for good.
            (UpstreamError.badRequest(status: 404, message: "not found"), 69, "not found"),
            (UpstreamError.transport("connection refused"), 69, "connection refused"),
            (UpstreamError.untrusted("expired"), 69, "expired"),
            (SinkError.notDelivered(["siem": "down"]), 74, "siem"),
            (Unexpected(), 70, "unexpected"),
        ]
        for (error, code, words) in cases {
            let status = ExitStatus.of(error)
            #expect(status.code == code, "\(error)")
            #expect(status.message.contains(words), "\(status.message)")
        }
    }
}
