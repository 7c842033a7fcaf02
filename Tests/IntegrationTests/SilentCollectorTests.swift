import AuditShipper
import AuditSimulator
import Foundation
import Testing

/// A syslog collector that accepts connections and never reads (nor answers a TLS
/// ClientHello): the kernel completes the handshake of a listening socket nobody accepts on.
/// The sink's `timeout` bounds connecting, the handshake and every write, so nothing hangs.
@Suite(.serialized) struct SilentCollectorTests {
    static let now = Int64(Date().timeIntervalSince1970)

    /// A loopback TCP socket that listens and never accepts; its port.
    static func silentListener() throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && listen(fd, 8) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else {
            close(fd)
            throw HarnessError("bind/listen: \(String(cString: strerror(errno)))")
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    func config(_ harness: DaemonHarness, transport: String, port: Int) throws {
        try harness.writeConfig(
            poll: "  interval: 1s\n  start_at: -1h",
            extra: """
                sinks:
                  - type: syslog
                    url: \(transport)://127.0.0.1:\(port)
                    timeout: 2s
                """)
    }

    /// TLS: `check` fails, naming the sink's timeout, where it used to hang. (Not hanging is
    /// what `run`'s 60 s bound checks; a wall-clock bound tighter than that failed on a loaded
    /// machine, and the message shows it was the 2 s timeout that ended it.)
    @Test func checkAgainstASilentTLSCollectorFailsWithinTheTimeout() async throws {
        try await DaemonHarness.with { harness async throws in
            let (fd, port) = try Self.silentListener()
            defer { close(fd) }
            try config(harness, transport: "tls", port: port)
            let status = try await harness.run(["check", "--config", harness.configPath], timeout: .seconds(60))
            #expect(status == 74, "\(harness.stderr)")
            #expect(harness.stderr.contains("nothing was taken within the timeout (2s)"), "\(harness.stderr)")
        }
    }

    /// TCP: the connection opens, the batch (30 MB) fills the socket buffers and stops moving;
    /// the write fails within the timeout, the sink's position holds, `once` exits 74 naming
    /// the sink; under `run`, SIGTERM meanwhile ends the process promptly with the state written.
    @Test func aCollectorThatStopsReadingFailsTheBatchAndThePositionHolds() async throws {
        try await DaemonHarness.with { harness async throws in
            let (fd, port) = try Self.silentListener()
            defer { close(fd) }
            harness.simulator.addEvents(count: 300, from: Self.now - 1000, to: Self.now - 10, large: true)
            try config(harness, transport: "tcp", port: port)
            let sink = "syslog tcp://127.0.0.1:\(port)"
            let status = try await harness.run(["once", "--config", harness.configPath], timeout: .seconds(60))
            #expect(status == 74, "\(harness.stderr)")
            #expect(harness.stderr.contains("nothing was taken within the timeout (2s)"), "\(harness.stderr)")
            let position = try harness.position(sink)
            #expect((position["delivered"] as? NSNumber)?.intValue == 0)
            #expect((position["last_error"] as? String)?.contains("within the timeout") == true)

            let daemon = try harness.launch(["run", "--config", harness.configPath])
            try await Task.sleep(for: .seconds(1))
            // Within 30 s, half the unit's TimeoutStopSec.
            kill(daemon.processIdentifier, SIGTERM)
            #expect(try await DaemonHarness.wait(daemon, timeout: .seconds(30)) == 0, "\(harness.stderr)")
            #expect((try harness.position(sink)["delivered"] as? NSNumber)?.intValue == 0)
        }
    }

    /// RELP: a listener that never answers fails `check` naming RELP's open; a collector that
    /// opens the session, answers 40 messages and then nothing fails the batch within the
    /// timeout, its position holds at what was answered, and the stdout sink beside it gets
    /// every event.
    @Test func aRELPCollectorThatStopsAnsweringFailsTheBatchAndTheOthersGoOn() async throws {
        try await DaemonHarness.with { harness async throws in
            let (fd, port) = try Self.silentListener()
            defer { close(fd) }
            try config(harness, transport: "relp", port: port)
            #expect(try await harness.run(["check", "--config", harness.configPath], timeout: .seconds(60)) == 74)
            #expect(
                harness.stderr.contains("answered nothing to RELP's open within the timeout (2s)"), "\(harness.stderr)")

            let collector = try ToolProcess("fake-relp.py", ["40"])
            defer { collector.stop() }
            harness.simulator.addEvents(count: 300, from: Self.now - 1000, to: Self.now - 10)
            let sink = "syslog relp://127.0.0.1:\(collector.port)"
            try harness.writeConfig(
                poll: "  start_at: -1h",
                extra: """
                    sinks:
                      - type: stdout
                      - type: syslog
                        url: relp://127.0.0.1:\(collector.port)
                        timeout: 2s
                        window: 16
                    """)
            let status = try await harness.run(["once", "--config", harness.configPath], timeout: .seconds(60))
            #expect(status == 74, "\(harness.stderr)")
            #expect(
                harness.stderr.contains("the collector answered nothing within the timeout (2s)"), "\(harness.stderr)")
            #expect(try harness.deliveredIDs().count == 300, "the stdout sink got every event")
            let position = try harness.position(sink)
            #expect((position["delivered"] as? NSNumber)?.intValue == 0, "the batch failed: the position holds")
            // The 40 answered are the sink's receipts: a retry sends none of them again.
            let receipts = Daemon.sinkFilePath(statePath: harness.statePath, sink: sink)
            // The record also notes what was written: 56 messages (the window refilled by
            // halves), so the 16 unanswered are known as in flight.
            let held = try ReceiptLog(path: receipts).read().count
            #expect(held == 40, "\(held) receipts")
            #expect(try ReceiptLog(path: receipts).inFlight().count == 16, "a window written and unanswered")
        }
    }

    /// A collector that refuses: one that does not offer RELP's `syslog` command fails `check`
    /// naming it; one that answers `500` after ten messages fails the batch naming its answer,
    /// with the ten it took held as receipts.
    @Test func aRELPCollectorThatRefusesIsNamed() async throws {
        try await DaemonHarness.with { harness async throws in
            let without = try ToolProcess("fake-relp.py", ["0", "--no-syslog"])
            defer { without.stop() }
            try config(harness, transport: "relp", port: without.port)
            #expect(try await harness.run(["check", "--config", harness.configPath], timeout: .seconds(60)) == 74)
            #expect(
                harness.stderr.contains("does not offer the RELP syslog command (it offers: none)"), "\(harness.stderr)"
            )

            let refusing = try ToolProcess("fake-relp.py", ["10", "--then-500"])
            defer { refusing.stop() }
            harness.simulator.addEvents(count: 50, from: Self.now - 1000, to: Self.now - 10)
            try config(harness, transport: "relp", port: refusing.port)
            #expect(try await harness.run(["once", "--config", harness.configPath], timeout: .seconds(60)) == 74)
            #expect(harness.stderr.contains("the collector did not take a message: queue full"), "\(harness.stderr)")
            let sink = "syslog relp://127.0.0.1:\(refusing.port)"
            let receipts = Daemon.sinkFilePath(statePath: harness.statePath, sink: sink)
            #expect(try ReceiptLog(path: receipts).read().count == 10)

            // One that ends the session after five: the batch fails naming it.
            let closing = try ToolProcess("fake-relp.py", ["5", "--then-serverclose"])
            defer { closing.stop() }
            try config(harness, transport: "relp", port: closing.port)
            let earlier = harness.stderr.count
            #expect(try await harness.run(["once", "--config", harness.configPath], timeout: .seconds(60)) == 74)
            let said = String(harness.stderr.dropFirst(earlier))
            #expect(said.contains("the collector ended the session (serverclose)"), "\(said)")
        }
    }
}
