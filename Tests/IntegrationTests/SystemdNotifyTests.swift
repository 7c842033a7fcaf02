import AuditSimulator
import Foundation
import Testing

/// The binary under a fake `NOTIFY_SOCKET`: readiness, status, watchdog, stopping.
@Suite(.serialized) struct SystemdNotifyTests {
    static let now = Int64(Date().timeIntervalSince1970)

    @Test func readyAfterTheChecksThenStatusWatchdogAndStopping() async throws {
        try await DaemonHarness.with { harness async throws in
            let listener = try NotifyListener(directory: harness.directory)
            defer { listener.stop() }
            harness.simulator.addEvents(count: 12, from: Self.now - 300, to: Self.now - 41)
            try harness.writeConfig(poll: "  interval: 1s\n  start_at: -1h")
            let daemon = try harness.launch(
                ["run", "--config", harness.configPath],
                environment: ["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "1000000"])
            try await harness.waitFor("READY=1") { listener.lines.contains("READY=1") }
            let requestsAtReady = harness.simulator.requests.all.count
            #expect(requestsAtReady >= 1, "the key was checked (limit=1) before READY=1")
            #expect(harness.simulator.requests.all.first?.uri.contains("limit=1") == true)
            #expect(FileManager.default.fileExists(atPath: harness.statePath), "the state was opened before READY=1")
            try await harness.waitFor("a status after a cycle") {
                listener.lines.contains {
                    $0.hasPrefix("STATUS=delivered 12 events, lag ") && $0.hasSuffix("next poll in 1s")
                }
            }
            // Half of WATCHDOG_USEC: about two a second; waited for by count, not by the clock.
            try await harness.waitFor("five watchdog pings") { listener.times(of: "WATCHDOG=1").count >= 5 }
            let pings = listener.times(of: "WATCHDOG=1")
            #expect(zip(pings, pings.dropFirst()).allSatisfy { $1 - $0 < .milliseconds(900) }, "\(pings)")
            kill(daemon.processIdentifier, SIGTERM)
            #expect(try await DaemonHarness.wait(daemon, timeout: .seconds(20)) == 0)
            #expect(listener.lines.contains("STOPPING=1"))
            let lines = listener.lines
            #expect(lines.firstIndex(of: "READY=1")! < lines.firstIndex(of: "STOPPING=1")!)
        }
    }

    @Test func aFailedPollIsTheStatus() async throws {
        try await DaemonHarness.with { harness async throws in
            let listener = try NotifyListener(directory: harness.directory)
            defer { listener.stop() }
            try harness.writeConfig(poll: "  interval: 1s\n  start_at: -1h")
            harness.simulator.faults.enqueue(.slow(milliseconds: 1))  // the start-up check passes
            harness.simulator.faults.enqueue(.status(400, retryAfter: nil), count: 1)
            let daemon = try harness.launch(
                ["run", "--config", harness.configPath], environment: ["NOTIFY_SOCKET": listener.path])
            try await harness.waitFor("a failure status") {
                listener.lines.contains { $0.hasPrefix("STATUS=last poll failed, retrying in 1s: ") }
            }
            #expect(listener.times(of: "WATCHDOG=1").isEmpty, "no WATCHDOG_USEC, no pings")
            kill(daemon.processIdentifier, SIGTERM)
            #expect(try await DaemonHarness.wait(daemon, timeout: .seconds(20)) == 0)
        }
    }

    @Test func aStuckLoopSendsNoWatchdogPings() async throws {
        try await DaemonHarness.with { harness async throws in
            let listener = try NotifyListener(directory: harness.directory)
            defer { listener.stop() }
            harness.simulator.addEvents(count: 5000, from: Self.now - 3000, to: Self.now - 10)
            try harness.writeConfig(poll: "  interval: 1s\n  start_at: -1h")
            // Nobody reads stdout: the first batch fills the pipe and the write blocks the loop.
            let pipe = Pipe()
            let daemon = try harness.launch(
                ["run", "--config", harness.configPath],
                environment: ["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "400000"], stdout: pipe)
            try await harness.waitFor("READY=1") { listener.lines.contains("READY=1") }
            // The loop is stuck once the pipe is full (it holds 64 KiB; the first batch is far
            // more): seen, not guessed. A ping already on its way lands within an interval.
            let reader = pipe.fileHandleForReading.fileDescriptor
            let capacity = fcntl(reader, 1032 /* F_GETPIPE_SZ */)
            #expect(capacity > 0)
            try await harness.waitFor("stdout's pipe full") {
                var queued: Int32 = 0
                return ioctl(reader, UInt(FIONREAD), &queued) == 0 && queued >= capacity
            }
            try await Task.sleep(for: .milliseconds(400))
            // An absence can only be shown over a span: five ping intervals without one.
            let before = listener.times(of: "WATCHDOG=1").count
            try await Task.sleep(for: .seconds(2))
            #expect(listener.times(of: "WATCHDOG=1").count == before, "no ping while the loop is stuck")
            // Unblock: drain stdout, and the pings come back.
            let drain = Task.detached { _ = pipe.fileHandleForReading.readDataToEndOfFile() }
            try await harness.waitFor("pings again") { listener.times(of: "WATCHDOG=1").count > before }
            kill(daemon.processIdentifier, SIGTERM)
            #expect(try await DaemonHarness.wait(daemon, timeout: .seconds(20)) == 0)
            try pipe.fileHandleForWriting.close()
            _ = await drain.value
        }
    }
    /// A 429 storm with Retry-After under a 2 s watchdog: the loop is waiting as told, not
    /// stuck, so the pings keep coming (never a gap near the watchdog's 2 s), and every event
    /// arrives once after it.
    @Test func aRateLimitStormKeepsTheWatchdogFed() async throws {
        try await DaemonHarness.with { harness async throws in
            let listener = try NotifyListener(directory: harness.directory)
            defer { listener.stop() }
            harness.simulator.addEvents(count: 50, from: Self.now - 600, to: Self.now - 10)
            try harness.writeConfig(poll: "  interval: 1s\n  start_at: -1h")
            harness.simulator.faults.enqueue(.pass)  // the start-up key check
            harness.simulator.faults.enqueue(.status(429, retryAfter: "2"), count: 3)
            let daemon = try harness.launch(
                ["run", "--config", harness.configPath],
                environment: ["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "2000000"])
            try await harness.waitFor("READY=1") { listener.lines.contains("READY=1") }
            // From when READY=1 arrived, not from when this poll saw it (seconds later when loaded).
            let started = try #require(listener.times(of: "READY=1").first)
            try await harness.waitFor("the events after the storm", timeout: .seconds(60)) { harness.lineCount() == 50 }
            #expect(ContinuousClock.now - started >= .seconds(5), "the three waits of 2 s were waited")
            let pings = listener.times(of: "WATCHDOG=1").filter { $0 >= started }
            let gaps = zip(pings, pings.dropFirst()).map { $1 - $0 }
            #expect(
                pings.count >= 5 && gaps.allSatisfy { $0 < .milliseconds(1900) }, "pings: \(pings.count), gaps: \(gaps)"
            )
            kill(daemon.processIdentifier, SIGTERM)
            #expect(try await DaemonHarness.wait(daemon, timeout: .seconds(20)) == 0)
            #expect(Set(try harness.deliveredIDs()).count == 50)
        }
    }
}
