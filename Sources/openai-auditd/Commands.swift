import ArgumentParser
import AuditShipper
import Foundation
import Logging
import ServiceLifecycle

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon (the default).",
        discussion: """
            Polls the audit log every poll.interval and delivers new events to every sink. \
            SIGTERM or SIGINT finishes the batch in flight, writes the state and exits 0. \
            SIGHUP reads the configuration again: a valid one takes effect at the next cycle, \
            an invalid one is logged and the running one kept (api.base_url, api.organization, \
            api.filters and state.path need a restart).
            """)
    @OptionGroup var options: CommonOptions

    func run() async throws {
        // SIGHUP must not end the daemon (its default action) even before the reload
        // service listens; UnixSignals sees it either way.
        signal(SIGHUP, SIG_IGN)
        try await Invocation.perform(options) { setup in
            let (daemon, failing) = try await setup.startDaemon(keepsPositions: true, pollsOn: true)
            let slot = DaemonSlot(daemon)
            // The slot shuts down whichever daemons are live at the end (the HTTP clients and
            // sink connections); the store holds the state lock until then.
            try await Self.closing(slot) {
                let (store, state) = try daemon.openState(environment: setup.environment, now: Daemon.now())
                let file = setup.configurationPath
                let reloading = DaemonServices.Reloading(
                    requests: await DaemonServices.hangups(),
                    load: { try ConfigurationLoader.load(file: file, environment: setup.environment) },
                    start: { configuration, previous in
                        try await setup.with(configuration).startDaemon(
                            keepsPositions: true, pollsOn: true, replacing: previous
                        ).0
                    },
                    accepted: {
                        setup.logSettings.reloaded(
                            level: $0.logLevel, format: $0.logFormat.resolved(environment: setup.environment))
                    })
                let services = try await DaemonServices(
                    slot: slot, store: store, state: state, environment: setup.environment, reloading: reloading,
                    failing: failing.map(\.name), logger: setup.logger)
                try await services.run()
                withExtendedLifetime(store) {}
            }
        }
    }

    /// Runs `body`, then shuts down every daemon the slot holds, whether `body` threw or not.
    static func closing(_ slot: DaemonSlot, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch {
            await slot.shutdownAll()
            throw error
        }
        await slot.shutdownAll()
    }
}

struct Once: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Catch up fully, deliver, and exit.")
    @OptionGroup var options: CommonOptions

    func run() async throws {
        try await Invocation.perform(options) { setup in
            let (daemon, _) = try await setup.startDaemon(keepsPositions: true)
            try await daemon.closing {
                let (store, state) = try daemon.openState(environment: setup.environment, now: Daemon.now())
                let runner = daemon.makeRunner(state: state, persist: { try store.save($0, as: $1) })
                let report = try await runner.runCycle(now: Daemon.now())
                withExtendedLifetime(store) {}
                // The others were delivered; the exit status says that not every sink was.
                guard report.sinkFailures.isEmpty else { throw SinkError.notDelivered(report.sinkFailures) }
                setup.logger.info(
                    "caught up",
                    metadata: [
                        "cycle.delivered": "\(report.delivered)", "cycle.duplicates": "\(report.duplicatesDropped)",
                        "cycle.pages": "\(report.pages)", "cycle.slices": "\(report.slices)",
                        "cycle.set_aside": "\(report.setAside)",
                    ])
            }
        }
    }
}

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate the configuration, call the API once (limit=1), open every sink.")
    @OptionGroup var options: CommonOptions

    func run() async throws {
        try await Invocation.perform(options) { setup in
            let daemon = try Daemon(configuration: setup.configuration, key: try setup.key(), logger: setup.logger)
            try await daemon.closing {
                try await daemon.checkUpstream()
                let route = daemon.proxy.map { "through the proxy \($0)" } ?? "no proxy"
                print("api: ok (\(setup.configuration.api.baseURL), \(route))")
                let failing = await daemon.failingSinks()
                guard failing.isEmpty else {
                    throw SinkError.cannotOpen(Dictionary(failing, uniquingKeysWith: { first, _ in first }))
                }
                print("sinks: ok (\(daemon.sinks.map(\.name).joined(separator: ", ")))")
                let path = setup.configuration.resolvedStatePath(environment: setup.environment)
                print("state: \(try StateReport.describeBriefly(path: path, configuration: setup.configuration))")
            }
        }
    }
}

struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-send the events of a time range to every sink; the state file is not touched.")
    @OptionGroup var options: CommonOptions

    @Option(help: "Start of the range (RFC 3339, Unix seconds, or relative like -7d).")
    var since: String

    @Option(help: "End of the range, exclusive (default: now).")
    var until: String?

    func validate() throws {
        guard TimeSpec.time(since, now: Daemon.now()) != nil else {
            throw ValidationError("--since '\(since)' is not a time (RFC 3339, Unix seconds, or -7d/-12h/-30m)")
        }
        if let until, TimeSpec.time(until, now: Daemon.now()) == nil {
            throw ValidationError("--until '\(until)' is not a time (RFC 3339, Unix seconds, or -7d/-12h/-30m)")
        }
    }

    func run() async throws {
        let now = Daemon.now()
        let since = TimeSpec.time(since, now: now)!
        let until = until.flatMap { TimeSpec.time($0, now: now) } ?? now
        guard since < until else { throw ValidationError("--since must be before --until") }
        try await Invocation.perform(options) { setup in
            let (daemon, _) = try await setup.startDaemon(keepsPositions: false)
            var settings = setup.configuration.cycleSettings
            settings.lookback = 0
            var state = AuditState(source: setup.configuration.stateSource, startAt: since, now: now)
            // Every sink from --since, whatever its start_at says.
            _ = state.reconcile(sinks: daemon.sinks.map(\.name), starts: [:])
            let runner = daemon.makeRunner(state: state, settings: settings, persist: { _, _ in })
            try await daemon.closing {
                let report = try await runner.runCycle(now: now, until: until)
                guard report.sinkFailures.isEmpty else { throw SinkError.notDelivered(report.sinkFailures) }
                setup.logger.info(
                    "replayed",
                    metadata: [
                        "replay.since": "\(TimeSpec.format(since))", "replay.until": "\(TimeSpec.format(until))",
                        "cycle.delivered": "\(report.delivered)",
                    ])
            }
        }
    }
}
