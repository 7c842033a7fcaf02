import ArgumentParser
import AuditSimulator
import Foundation

/// `openai-audit-sim`: the fake Admin API for the demo, the benchmark and manual testing.
@main
struct SimulatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "openai-audit-sim",
        abstract: "Serve a simulated OpenAI audit log API on loopback (development only).",
        discussion:
            "Control interface: POST /_sim/events, /_sim/events/raw, /_sim/faults, /_sim/reset; GET /_sim/stats, /_sim/requests."
    )

    @Option(help: "Address to bind (loopback only is sensible).") var host = "127.0.0.1"
    @Option(help: "Port (0: any free port).") var port = 8089
    @Option(help: "Write the bound port to this file once listening.") var portFile: String?
    @Option(help: "The admin key the simulator accepts.") var adminKey = "sk-admin-simulator-0000000000000000"
    @Option(help: "Events of history to generate at start.") var history = 0
    @Option(help: "Seconds of history the generated events spread over (ending now).") var historySpan = 30 * 86_400
    @Option(help: "Every Nth history event is ~100 KB (0: none).") var largeEvery = 0
    @Option(help: "New events per second while running (0: none).") var trickle = 0.0
    @Option(help: "Share of trickled events that arrive late (stamped 5-60 s in the past).") var lateFraction = 0.1
    @Option(help: "Share of events with quotes, backslashes, brackets, newlines and non-ASCII.") var trickyRate = 0.05
    @Option(help: "Seed for the generated events.") var seed: UInt64 = 1
    @Flag(help: "Answer tenant_only=true with a 400 naming it, as an API without the parameter would.")
    var rejectTenantOnly = false
    @Flag(help: "List oldest first (after=<last_id> pages towards newer events) instead of newest first.")
    var oldestFirst = false
    @Option(help: "Serve HTTPS with this certificate (PEM); needs --tls-key.") var tlsCert: String?
    @Option(help: "The private key (PEM) of --tls-cert.") var tlsKey: String?

    func run() async throws {
        let simulator = AuditSimulator(adminKey: adminKey, seed: seed, trickyRate: trickyRate)
        let now = Int64(Date().timeIntervalSince1970)
        if history > 0 {
            var added = 0
            let chunk = 10_000
            while added < history {
                let count = min(chunk, history - added)
                let from = now - Int64(historySpan) + Int64(historySpan) * Int64(added) / Int64(history)
                let to = now - Int64(historySpan) + Int64(historySpan) * Int64(added + count - 1) / Int64(history)
                simulator.addEvents(count: count, from: from, to: to)
                if largeEvery > 0 {
                    simulator.addEvents(count: count / largeEvery, from: from, to: to, large: true)
                }
                added += count
            }
        }
        simulator.rejectTenantOnly.withLock { $0 = rejectTenantOnly }
        simulator.store.oldestFirst.withLock { $0 = oldestFirst }
        guard (tlsCert == nil) == (tlsKey == nil) else {
            throw ValidationError("--tls-cert and --tls-key go together")
        }
        let bound = try await simulator.start(host: host, port: port, certificate: tlsCert, privateKey: tlsKey)
        if let portFile { try "\(bound)\n".write(toFile: portFile, atomically: true, encoding: .utf8) }
        FileHandle.standardError.write(
            Data(
                "openai-audit-sim: listening on \(tlsCert == nil ? "http" : "https")://\(host):\(bound)/v1 with \(simulator.store.count) events\n"
                    .utf8)
        )
        guard trickle > 0 else {
            try await Task.sleep(for: .seconds(365 * 86_400))
            return
        }
        var random = SeededRandom(seed: seed &+ 1)
        let period = Duration.seconds(1 / trickle)
        while !Task.isCancelled {
            try await Task.sleep(for: max(period, .milliseconds(1)))
            let now = Int64(Date().timeIntervalSince1970)
            let late = Double(random.next() % 1000) / 1000 < lateFraction
            simulator.addEvents(count: 1, from: late ? now - Int64(5 + random.next() % 56) : now)
        }
    }
}
