import Logging
import ServiceLifecycle
import UnixSignals

/// What `openai-auditd run` serves, wired in the library so that tests reach it: the poll
/// loop, reloads on SIGHUP, the metrics endpoint and the watchdog, under one `ServiceGroup`
/// that turns SIGTERM and SIGINT into a graceful shutdown.
public struct DaemonServices: Sendable {
    public let group: ServiceGroup
    public let health: ServiceHealth
    let notifier: SystemdNotifier
    let readyStatus: String
    let interval: Duration
    let logger: Logger
    let started: Logger.Metadata

    /// How a reload gets its configuration and its checked daemon.
    public struct Reloading: Sendable {
        public var requests: AsyncStream<Void>
        public var load: @Sendable () throws -> Configuration
        public var start: @Sendable (Configuration, Daemon) async throws -> Daemon
        public var accepted: @Sendable (Configuration) -> Void

        public init(
            requests: AsyncStream<Void>, load: @escaping @Sendable () throws -> Configuration,
            start: @escaping @Sendable (Configuration, Daemon) async throws -> Daemon,
            accepted: @escaping @Sendable (Configuration) -> Void
        ) {
            self.requests = requests
            self.load = load
            self.start = start
            self.accepted = accepted
        }
    }

    /// Builds every service for the daemon `slot` holds; binds the metrics endpoint now, so a
    /// port in use fails here (78) and not after READY=1. `failing`: sinks down at start.
    public init(
        slot: DaemonSlot, store: StateStore, state: AuditState, environment: [String: String],
        reloading: Reloading, failing: [String], logger: Logger
    ) async throws {
        let daemon = slot.latest
        let configuration = daemon.configuration
        let runner = daemon.makeRunner(state: state, writer: .file(store))
        let notifier = SystemdNotifier(environment: environment, logger: logger)
        let health = ServiceHealth(heartbeat: daemon.heartbeat)
        let service = AuditService(
            runner: runner, interval: configuration.poll.interval, logger: logger, clock: Daemon.now,
            heartbeat: daemon.heartbeat, reloads: slot,
            observer: { outcome in
                switch outcome {
                case .finished(let report, let state, let interval):
                    health.succeeded(interval: interval)
                    notifier.status(StatusLine.after(report, state: state, now: Daemon.now(), interval: interval))
                case .failed(let message, let interval):
                    health.failed(message, interval: interval)
                    notifier.status(StatusLine.failed(message, interval: interval))
                }
            },
            stopping: { notifier.stopping() })
        let reloads = ReloadService(
            requests: reloading.requests, slot: slot, environment: environment, load: reloading.load,
            start: reloading.start, accepted: reloading.accepted, notifier: notifier, logger: logger)
        var services: [any Service] = [service, reloads]
        if let listen = configuration.metricsListen {
            let server = MetricsServer(
                host: listen.host, port: listen.port, metrics: daemon.metrics, health: health, logger: logger)
            _ = try await server.bind()
            services.append(server)
        }
        if let ping = SystemdNotifier.watchdogInterval() {
            services.append(
                WatchdogService(
                    notifier: notifier, interval: ping, heartbeat: daemon.heartbeat, executor: daemon.executor,
                    logger: logger))
        }
        group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        self.health = health
        self.notifier = notifier
        self.logger = logger
        interval = configuration.poll.interval
        // A sink that is down is named, but does not hold the others back.
        readyStatus = StatusLine.started(state, lookback: configuration.poll.lookback, failing: failing)
        started = [
            "version": "\(AuditShipperVersion.current)", "state.path": "\(store.path)",
            "poll.interval": "\(configuration.poll.interval)",
        ]
    }

    /// Config, key (one limit=1 request), state and sinks are checked: READY=1, then serve
    /// until SIGTERM or SIGINT.
    public func run() async throws {
        notifier.ready(status: readyStatus)
        health.started(interval: interval)
        logger.info("started", metadata: started)
        try await group.run()
    }

    /// SIGHUP through ServiceLifecycle's `UnixSignals` (which also stops it from ending the
    /// process), as a stream in which signals arriving during a reload collapse into one more.
    public static func hangups() async -> AsyncStream<Void> {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let forward = Task {
            for await _ in signals { continuation.yield() }
            continuation.finish()
        }
        continuation.onTermination = { _ in forward.cancel() }
        return stream
    }
}
