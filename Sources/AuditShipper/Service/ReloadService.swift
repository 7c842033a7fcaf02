import Logging
import ServiceLifecycle

/// SIGHUP: read the configuration again; if it is valid, can apply without a restart, and
/// its key, upstream and sinks check out, it takes effect at the next cycle. Otherwise the
/// error is logged and the running configuration stays. Requests are handled one at a time;
/// several that arrive during one reload collapse into one more.
public struct ReloadService: Service {
    let requests: AsyncStream<Void>
    let slot: DaemonSlot
    let environment: [String: String]
    /// Reads and validates the configuration file (with the environment's overrides).
    let load: @Sendable () throws -> Configuration
    /// Builds and checks a daemon for a configuration, as at start, on the previous one's
    /// executor and heartbeat.
    let start: @Sendable (Configuration, Daemon) async throws -> Daemon
    /// Told once the new configuration is accepted, before the next cycle (the log level).
    let accepted: @Sendable (Configuration) -> Void
    let notifier: SystemdNotifier
    let logger: Logger

    public init(
        requests: AsyncStream<Void>, slot: DaemonSlot, environment: [String: String],
        load: @escaping @Sendable () throws -> Configuration,
        start: @escaping @Sendable (Configuration, Daemon) async throws -> Daemon,
        accepted: @escaping @Sendable (Configuration) -> Void = { _ in }, notifier: SystemdNotifier, logger: Logger
    ) {
        self.requests = requests
        self.slot = slot
        self.environment = environment
        self.load = load
        self.start = start
        self.accepted = accepted
        self.notifier = notifier
        self.logger = logger
    }

    public func run() async {
        for await _ in requests.cancelOnGracefulShutdown() {
            notifier.reloading()
            let status = await reload()
            notifier.ready(status: status)
        }
    }

    /// One reload; returns the `STATUS=` line that reports it.
    public func reload() async -> String {
        logger.info("SIGHUP received, reading the configuration again")
        let running = slot.latest
        let configuration: Configuration
        do {
            configuration = try load()
        } catch {
            return refuse("\(error)")
        }
        if let refusal = configuration.reloadRefusal(replacing: running.configuration, environment: environment) {
            return refuse(refusal)
        }
        let daemon: Daemon
        do {
            // Always rebuilt, even when the file did not change: the key file may have.
            daemon = try await start(configuration, running)
        } catch {
            return refuse("\(error)")
        }
        let displaced = slot.offer(daemon)
        await displaced?.shutdown(resigning: false)
        accepted(configuration)
        let changed = configuration.changedKeys(from: running.configuration, environment: environment)
        logger.notice(
            "configuration reloaded, in effect from the next cycle",
            metadata: ["config.changed": "\(changed.isEmpty ? "nothing" : changed.joined(separator: ","))"])
        return "configuration reloaded, in effect from the next cycle"
    }

    func refuse(_ reason: String) -> String {
        logger.error(
            "configuration reload failed, keeping the running configuration", metadata: ["error": "\(reason)"])
        return "configuration reload failed, running with the previous configuration: \(reason.prefix(300))"
    }
}
