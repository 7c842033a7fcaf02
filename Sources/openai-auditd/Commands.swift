import ArgumentParser
import AuditShipper
import Foundation
import Logging
import ServiceLifecycle

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the daemon (the default).")
    @OptionGroup var options: CommonOptions

    func run() async throws {
        try await Invocation.perform(options) { setup in
            let daemon = try await setup.startDaemon()
            let (store, state) = try daemon.openState(environment: setup.environment, now: Daemon.now())
            let runner = daemon.makeRunner(state: state, persist: { try store.save($0) })
            let interval = setup.configuration.poll.interval
            let notifier = SystemdNotifier(environment: setup.environment)
            let service = AuditService(
                runner: runner, interval: interval, logger: setup.logger, clock: Daemon.now,
                heartbeat: daemon.heartbeat,
                observer: { outcome in
                    switch outcome {
                    case .finished(let report, let state):
                        notifier.status(StatusLine.after(report, state: state, now: Daemon.now(), interval: interval))
                    case .failed(let message):
                        notifier.status(StatusLine.failed(message, interval: interval))
                    }
                },
                stopping: { notifier.stopping() })
            var services: [any Service] = [service]
            if let ping = SystemdNotifier.watchdogInterval() {
                // A cycle may legitimately wait out retries (Retry-After up to 15 min); past
                // that plus two polls without a page, batch or tick, the loop is stuck.
                let stale = interval * 2 + .seconds(1800)
                services.append(
                    WatchdogService(
                        notifier: notifier, interval: ping, heartbeat: daemon.heartbeat, staleAfter: stale,
                        executor: daemon.executor, logger: setup.logger))
            }
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: setup.logger))
            // Config, key (one limit=1 request), state and sinks are checked: now systemd may go on.
            notifier.ready(
                status:
                    "started, delivering events from \(TimeSpec.format(state.windowStart(lookback: setup.configuration.poll.lookback)))"
            )
            setup.logger.info(
                "started",
                metadata: [
                    "version": "\(AuditShipperVersion.current)", "state.path": "\(store.path)",
                    "poll.interval": "\(setup.configuration.poll.interval)",
                ])
            // SIGHUP must not end the daemon (its default action). Reloading comes with the
            // packaged units; until then it says so.
            signal(SIGHUP, SIG_IGN)
            let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
            hangup.setEventHandler {
                setup.logger.warning(
                    "SIGHUP received: configuration reload is not supported in this version; restart to apply changes")
            }
            hangup.resume()
            defer { hangup.cancel() }
            // The store holds the state lock for as long as the service runs.
            try await daemon.closing {
                try await group.run()
                withExtendedLifetime(store) {}
            }
        }
    }
}

struct Once: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Catch up fully, deliver, and exit.")
    @OptionGroup var options: CommonOptions

    func run() async throws {
        try await Invocation.perform(options) { setup in
            let daemon = try await setup.startDaemon()
            try await daemon.closing {
                let (store, state) = try daemon.openState(environment: setup.environment, now: Daemon.now())
                let runner = daemon.makeRunner(state: state, persist: { try store.save($0) })
                let report = try await runner.runCycle(now: Daemon.now())
                let completeBefore = await runner.state.completeBefore
                setup.logger.info(
                    "caught up",
                    metadata: [
                        "cycle.delivered": "\(report.delivered)", "cycle.duplicates": "\(report.duplicatesDropped)",
                        "cycle.pages": "\(report.pages)", "cycle.slices": "\(report.slices)",
                        "state.complete_before": "\(TimeSpec.format(completeBefore))",
                    ])
                withExtendedLifetime(store) {}
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
                print("api: ok (\(setup.configuration.api.baseURL))")
                try await daemon.checkSinks()
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
            let daemon = try await setup.startDaemon()
            var settings = setup.configuration.cycleSettings
            settings.lookback = 0
            let state = AuditState(source: setup.configuration.stateSource, startAt: since, now: now)
            let runner = daemon.makeRunner(state: state, settings: settings, persist: { _ in })
            try await daemon.closing {
                let report = try await runner.runCycle(now: now, until: until)
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
