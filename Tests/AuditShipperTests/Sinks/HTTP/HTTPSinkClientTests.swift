import Testing

@testable import AuditShipper

/// What `HTTPSinkClient` says about the files of `tls:` before any connection.
@Suite struct HTTPSinkClientTests {
    @Test func aMissingTLSFileIsNamedInWords() {
        var settings = Configuration.HTTPSinkSettings(url: "https://splunk.example.com:8088")
        settings.tls.caFile = "/nonexistent/openai-auditd-test-ca.pem"
        #expect {
            _ = try HTTPSinkClient(settings: settings, secret: nil)
        } throws: { error in
            "\(error)" == "cannot read tls.ca_file /nonexistent/openai-auditd-test-ca.pem: no such file"
        }
    }
}
