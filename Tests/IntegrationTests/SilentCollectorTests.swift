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
}
