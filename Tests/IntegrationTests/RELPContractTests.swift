import AuditShipper
import Foundation
import Logging
import Testing

/// `Sink`'s contract (as `SinkContractTests` holds stdout, file and datagram syslog to it) for
/// the one sink whose receipts come from the network: syslog over RELP, against a real
/// rsyslog's imrelp. It takes a batch whole and in order; with the collector stopped it fails
/// naming itself; and every message the collector answered is a receipt the next process
/// reads, until the position is recorded.
@Suite(.serialized) struct RELPContractTests {
    static func events(_ range: Range<Int>) throws -> [AuditEvent] {
        try range.map { n in
            let json = #"{"id":"audit_log-relp-\#(n)","type":"api_key.created","effective_at":\#(1_722_471_046 + n)}"#
            return try PageScanner.scan(Array(#"{"data":[\#(json)],"has_more":false}"#.utf8)).events[0]
        }
    }

    func sink(_ rsyslog: RsyslogHarness, hostname: String, receipts: String) throws -> SyslogSink {
        var settings = Configuration.SyslogSettings()
        settings.url = "relp://127.0.0.1:\(rsyslog.relpPort)"
        settings.transport = .relp(host: "127.0.0.1", port: rsyslog.relpPort, tls: false)
        settings.hostname = hostname
        settings.timeout = .seconds(5)
        return try SyslogSink(
            settings: settings, name: "relp", logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
            receiptLog: ReceiptLog(path: receipts))
    }

    func ids(_ rsyslog: RsyslogHarness, _ hostname: String) -> [String] {
        rsyslog.messages(hostname: hostname).compactMap { message in
            (message["msg"] as? String).flatMap { msg in
                msg.range(of: #"audit_log-relp-[0-9]+"#, options: .regularExpression).map { String(msg[$0]) }
            }
        }
    }

    @Test func aRELPSinkKeepsTheContract() async throws {
        let rsyslog = try RsyslogHarness()
        try await rsyslog.start()
        defer { try? FileManager.default.removeItem(atPath: rsyslog.directory + "/receipts") }
        do {
            let hostname = "relp-contract-\(UUID().uuidString.prefix(6))"
            let receipts = rsyslog.directory + "/receipts"
            let events = try Self.events(0..<40)
            let sink = try sink(rsyslog, hostname: hostname, receipts: receipts)
            try await sink.check()
            try await sink.deliver(Array(events[..<15]))
            try await sink.deliver(Array(events[15...]))
            // Whole and in order (rsyslog writes them as imrelp took them).
            for _ in 0..<100 where ids(rsyslog, hostname).count < events.count {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(ids(rsyslog, hostname) == events.map(\.id))
            // Every answered message is a receipt a new process reads, until recorded.
            let next = try self.sink(rsyslog, hostname: hostname, receipts: receipts)
            #expect(try await next.receipts().map(\.id) == events.map(\.id))
            try await next.positionRecorded()
            #expect(try await self.sink(rsyslog, hostname: hostname, receipts: receipts).receipts().isEmpty)
            // The collector gone: the batch fails, naming the sink, and records nothing.
            try await rsyslog.stop()
            await #expect {
                try await sink.deliver(try Self.events(40..<45))
            } throws: { error in
                "\(error)".contains("sink relp")
            }
            #expect(try await next.receipts().isEmpty, "nothing answered, nothing recorded")
            await sink.close()
            await next.close()
        } catch {
            await rsyslog.close()
            throw error
        }
        await rsyslog.close()
    }
}
