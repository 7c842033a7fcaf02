import ArgumentParser
import AuditShipper
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

enum LogLevelArgument: String, ExpressibleByArgument, CaseIterable {
    case trace, debug, info, notice, warning, error, critical
}

/// What every command starts from: configuration, logger, environment; and the one place
/// where errors become messages on stderr and sysexits codes.
struct Invocation {
    let configuration: Configuration
    /// The file `configuration` was read from (a reload reads it again).
    let configurationPath: String
    let environment: [String: String]
    /// The level and format of the daemon's own lines, which a reload may change.
    let logSettings: LogSettings
    let logger: Logger

    static func perform(_ options: CommonOptions, _ body: (Invocation) async throws -> Void) async throws {
        // A closed stdout must surface as EPIPE from write(2), not kill the process.
        signal(SIGPIPE, SIG_IGN)
        let environment = ProcessInfo.processInfo.environment
        // Until the configuration is read: `auto`, so that even an error in it reaches the
        // journal at its priority.
        let settings = LogSettings(
            flag: options.logLevel.flatMap { Logger.Level(rawValue: $0.rawValue) },
            format: LogFormat.auto.resolved(environment: environment))
        LoggingSystem.bootstrap { label in DiagnosticLogHandler(label: label, settings: settings) }
        do {
            let path = ConfigurationLoader.path(flag: options.config, environment: environment)
            let configuration = try ConfigurationLoader.load(file: path, environment: environment)
            settings.reloaded(
                level: configuration.logLevel, format: configuration.logFormat.resolved(environment: environment))
            try await body(
                Invocation(
                    configuration: configuration, configurationPath: path, environment: environment,
                    logSettings: settings, logger: Logger(label: "openai-auditd")))
        } catch {
            let (code, message) = Self.exit(for: error)
            DiagnosticLogHandler.standardError(settings.finalError(message))
            throw ExitCode(code)
        }
    }

    func key() throws -> AdminKey {
        try AdminKeyLoader.load(configuration: configuration, environment: environment)
    }

    /// A daemon whose key, upstream and sinks were checked: a rejected key stops here (77),
    /// a refused filter too (78); an unreachable API only warns, the loop will retry. With
    /// `pollsOn` (`run` and its reloads), whatever else the API answers (a certificate that
    /// does not verify, a gateway's 404) is logged and the daemon starts anyway, retrying at
    /// every poll: the network may be intercepted for a while, and a unit that exits here
    /// stays down. The commands that end (`once`, `replay`) stop on it (69). A sink that
    /// cannot be reached only warns: the others must not go blind because of it, and it
    /// catches up when it is back. `keepsPositions` for the commands that move the state
    /// (`run`, `once`). A reload passes the daemon it replaces, whose executor and heartbeat
    /// carry over. Returns the daemon and the sinks that failed their check.
    func startDaemon(
        keepsPositions: Bool, pollsOn: Bool = false, replacing previous: Daemon? = nil
    ) async throws -> (Daemon, failing: [(name: String, error: String)]) {
        let statePath = keepsPositions ? configuration.resolvedStatePath(environment: environment) : nil
        let daemon =
            if let previous {
                try Daemon(
                    configuration: configuration, key: try key(), logger: logger, statePath: statePath,
                    executor: previous.executor, heartbeat: previous.heartbeat, metrics: previous.metrics)
            } else {
                try Daemon(configuration: configuration, key: try key(), logger: logger, statePath: statePath)
            }
        if let proxy = daemon.proxy, previous == nil {
            logger.info("the API is reached through a proxy", metadata: ["proxy": "\(proxy)"])
        }
        do {
            try await daemon.checkUpstream()
        } catch let error as UpstreamError where error.isRetryable {
            logger.warning("the API is not reachable yet, will retry", metadata: ["error": "\(error)"])
        } catch let error as UpstreamError where pollsOn && error.isUntrusted {
            logger.error(
                "the API cannot be trusted; nothing is read until it can, retrying at every poll",
                metadata: ["error": "\(error)"])
        } catch let error as UpstreamError where pollsOn && !error.isKeyRejected && !error.refusesConfiguration {
            logger.warning(
                "the API refused the first request; starting anyway, retrying at every poll",
                metadata: ["error": "\(error)"])
        } catch {
            await daemon.shutdown()
            throw error
        }
        return (daemon, await failingSinks(daemon))
    }

    /// The sinks that fail their check, each named in a warning.
    func failingSinks(_ daemon: Daemon) async -> [(name: String, error: String)] {
        let failing = await daemon.failingSinks()
        for sink in failing {
            logger.warning(
                "sink is not reachable; the other sinks go on, and it catches up when it is back",
                metadata: ["sink": "\(sink.name)", "error": "\(sink.error)"])
        }
        return failing
    }

    /// The same invocation with a reloaded configuration.
    func with(_ configuration: Configuration) -> Invocation {
        Invocation(
            configuration: configuration, configurationPath: configurationPath, environment: environment,
            logSettings: logSettings, logger: logger)
    }

    static func exit(for error: Error) -> (Int32, String) {
        switch error {
        case let error as ConfigurationError: return (78, "\(error)")
        case let error as StateError: return (error.exitCode, "\(error)")
        case let error as UpstreamError:
            switch error.underlying {
            case .keyRejected: return (77, "\(error)")
            case .badRequest(_, let message) where error.refusesConfiguration && message.contains("tenant_only"):
                return (
                    78, "\(error) (this API does not take tenant_only: set api.include_tenant_events to auto or false)"
                )
            case .badRequest where error.refusesConfiguration:
                return (78, "\(error) (check api.filters and api.page_size)")
            // Any other refusal (a 404 from a gateway, a redirect) is not the configuration's:
            // 78 would keep a systemd unit down for good (RestartPreventExitStatus).
            default: return (69, "\(error)")
            }
        case let error as SinkError: return (74, "\(error)")
        case let error as ValidationError: return (64, error.message)
        default: return (70, "\(error)")
        }
    }
}
