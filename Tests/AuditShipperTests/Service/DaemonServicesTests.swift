import AuditShipper
import AuditSimulator
import Foundation
import Logging
import ServiceLifecycle
import Testing

/// The whole `run` daemon in-process: the same services the binary runs, against the
/// simulator, stopped by a graceful shutdown.
@Suite struct DaemonServicesTests {
    static let key = "sk-admin-simulator-0000000000000000"

    @Test func theWholeDaemonRunsInProcessAndStopsGracefully() async throws {
        let simulator = AuditSimulator(adminKey: Self.key, trickyRate: 0)
        try await simulator.start()
        do {
            try await runTheDaemon(simulator)
        } catch {
            try? await simulator.stop()
            throw error
        }
        try await simulator.stop()
    }

    func runTheDaemon(_ simulator: AuditSimulator) async throws {
        let now = Int64(Date().timeIntervalSince1970)
        simulator.addEvents(count: 30, from: now - 600, to: now - 60, types: ["api_key.created"])
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var configuration = try ConfigurationLoader.parse(
            yaml: "api:\n  base_url: \(simulator.baseURL)\npoll:\n  interval: 1s\n  start_at: -1h", file: "test.yaml")
        configuration.statePath = directory.path + "/state.json"
        let logger = Logger.silent
        let output = Recorder()
        let daemon = try Daemon(
            configuration: configuration, key: AdminKey(Self.key, origin: "test"), logger: logger,
            statePath: configuration.statePath, output: output)
        let slot = DaemonSlot(daemon)
        let loaded = configuration
        let (store, state) = try daemon.openState(environment: [:], now: now)
        let (requests, _) = AsyncStream<Void>.makeStream()
        let services = try await DaemonServices(
            slot: slot, store: store, state: state, environment: [:],
            reloading: DaemonServices.Reloading(
                requests: requests, load: { loaded }, start: { _, previous in previous }, accepted: { _ in }),
            failing: [], logger: logger)
        let running = Task { try await services.run() }
        func lines() -> Int { output.bytes.withLock { $0.count { $0 == 0x0A } } }
        for _ in 0..<500 where lines() < 30 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(lines() == 30)
        // The lines are out before the cycle ends and reports its success.
        for _ in 0..<500 where services.health.notReadyReason() != nil { try await Task.sleep(for: .milliseconds(10)) }
        #expect(services.health.notReadyReason() == nil, "ready after a successful cycle")
        await services.group.triggerGracefulShutdown()
        try await running.value
        await slot.shutdownAll()
        #expect(try store.load()?.positions["stdout"]?.delivered == 30, "the state was written")
        withExtendedLifetime(store) {}
    }
}
