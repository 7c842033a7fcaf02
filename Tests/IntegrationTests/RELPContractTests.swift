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

    func sink(
        _ rsyslog: RsyslogHarness, hostname: String, receipts: String, port: Int? = nil,
        // As in production: a loaded CI machine once took rsyslog past 5 s.
        timeout: Duration = .seconds(30),
        metrics: DaemonMetrics? = nil
    ) throws -> SyslogSink {
        let port = port ?? rsyslog.relpPort
        var settings = Configuration.SyslogSettings()
        settings.url = "relp://127.0.0.1:\(port)"
        settings.transport = .relp(host: "127.0.0.1", port: port, tls: false)
        settings.hostname = hostname
        settings.timeout = timeout
        return try SyslogSink(
            settings: settings, name: "relp", logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
            metrics: metrics, receiptLog: ReceiptLog(path: receipts))
    }

    func ids(_ rsyslog: RsyslogHarness, _ hostname: String) -> [String] {
        rsyslog.messages(hostname: hostname).compactMap { message in
            (message["msg"] as? String).flatMap { msg in
                msg.range(of: #"audit_log-relp-[0-9]+"#, options: .regularExpression).map { String(msg[$0]) }
            }
        }
    }

    @Test func aRELPSinkKeepsTheContract() async throws {
        let rsyslog = try await RsyslogHarness.started()
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

    /// A process that dies with messages written and unanswered leaves them noted: the next
    /// process counts each one it sends again as resent (the metric an operator watches),
    /// and the answered ones are receipts, not sent at all.
    @Test func whatACrashLeftInFlightIsCountedWhenSentAgain() async throws {
        let rsyslog = try await RsyslogHarness.started()
        let receipts = rsyslog.directory + "/receipts-in-flight"
        defer { try? FileManager.default.removeItem(atPath: receipts) }
        // Answers the first 5 messages, then reads on without a word.
        let wedged = try ToolProcess("fake-relp.py", ["5"])
        defer { wedged.stop() }
        do {
            let hostname = "relp-in-flight-\(UUID().uuidString.prefix(6))"
            let events = try Self.events(0..<20)
            // 5 s for the five answers to come: 1 s was too short for a loaded machine.
            let first = try sink(
                rsyslog, hostname: hostname, receipts: receipts, port: wedged.port, timeout: .seconds(5))
            await #expect(throws: (any Error).self) { try await first.deliver(events) }
            await first.close()
            // The next process, as its first cycle does: receipts, then the rest.
            let metrics = DaemonMetrics(version: "test")
            let next = try sink(rsyslog, hostname: hostname, receipts: receipts, metrics: metrics)
            let held = try await next.receipts().map(\.id)
            #expect(held == events[..<5].map(\.id))
            try await next.deliver(Array(events[5...]))
            var exposition: [UInt8] = []
            metrics.registry.emit(into: &exposition)
            let line = String(decoding: exposition, as: UTF8.self).split(separator: "\n").first {
                $0.hasPrefix("openai_auditd_events_resent_total{") && $0.contains(#"sink="relp""#)
            }
            #expect(line?.split(separator: " ").last == "15", "\(line ?? "no resent series")")
            await next.close()
        } catch {
            await rsyslog.close()
            throw error
        }
        await rsyslog.close()
    }
}
