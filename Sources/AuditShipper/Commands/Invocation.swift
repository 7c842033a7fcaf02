import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// What every command starts from: configuration, logger, environment; and where its errors
/// become a line on stderr and an exit code (`ExitStatus`). The commands themselves are the
/// extensions beside this file (`run`, `once`, `replay`, `check`, `state`); the executable
/// only parses flags and calls them.
public struct Invocation: Sendable {
    public let configuration: Configuration
    /// The file `configuration` was read from (a reload reads it again).
    public let configurationPath: String
    public let environment: [String: String]
    /// The level and format of the daemon's own lines, which a reload may change.
    public let logSettings: LogSettings
    public let logger: Logger

    public init(
        configuration: Configuration, configurationPath: String, environment: [String: String],
        logSettings: LogSettings, logger: Logger
    ) {
        self.configuration = configuration
        self.configurationPath = configurationPath
        self.environment = environment
        self.logSettings = logSettings
        self.logger = logger
    }

    /// Sets up logging, reads the configuration (`configFlag`, else the environment's or the
    /// default path) and runs `body`. Returns the exit code: 0, or the code of what `body` (or
    /// the configuration) threw, whose message is written to stderr here.
    public static func perform(
        configFlag: String?, logLevel: Logger.Level?, _ body: (Invocation) async throws -> Void
    ) async -> Int32 {
        // A closed stdout must surface as EPIPE from write(2), not kill the process.
        signal(SIGPIPE, SIG_IGN)
        let environment = ProcessInfo.processInfo.environment
        // Until the configuration is read: `auto`, so that even an error in it reaches the
        // journal at its priority.
        let settings = LogSettings(flag: logLevel, format: LogFormat.auto.resolved(environment: environment))
        LoggingSystem.bootstrap { label in DiagnosticLogHandler(label: label, settings: settings) }
        do {
            let path = ConfigurationLoader.path(flag: configFlag, environment: environment)
            let configuration = try ConfigurationLoader.load(file: path, environment: environment)
            settings.reloaded(
                level: configuration.logLevel, format: configuration.logFormat.resolved(environment: environment))
            try await body(
                Invocation(
                    configuration: configuration, configurationPath: path, environment: environment,
                    logSettings: settings, logger: Logger(label: "openai-auditd")))
            return 0
        } catch {
            let (code, message) = ExitStatus.of(error)
            DiagnosticLogHandler.standardError(settings.finalError(message))
            return code
        }
    }

    public func key() throws -> AdminKey {
        try AdminKeyLoader.load(configuration: configuration, environment: environment)
    }

    /// The state file this configuration names.
    public var statePath: String { configuration.resolvedStatePath(environment: environment) }

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
    public func startDaemon(
        keepsPositions: Bool, pollsOn: Bool = false, replacing previous: Daemon? = nil
    ) async throws -> (Daemon, failing: [(name: String, error: String)]) {
        let statePath = keepsPositions ? statePath : nil
        let daemon =
            if let previous {
                try Daemon(
                    configuration: configuration, key: try key(), logger: logger, statePath: statePath,
                    executor: previous.executor, heartbeat: previous.heartbeat, metrics: previous.metrics,
                    coordination: previous.coordination)
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
        if let coordination = daemon.coordination, previous == nil {
            do {
                try await coordination.prepare()
                logger.info(
                    "coordination: this member is in its group; the lease's holder delivers to the shared sinks",
                    metadata: [
                        "coordination.group": "\(coordination.group)", "coordination.member": "\(coordination.member)",
                    ])
            } catch CoordinationError.unreachable(let url, let reason) {
                logger.warning(
                    "PostgreSQL cannot be reached yet: the local sinks go on, the shared ones wait for the lease",
                    metadata: ["coordination.url": "\(url)", "error": "\(reason)"])
            } catch {
                await daemon.shutdown()
                throw error
            }
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
    public func with(_ configuration: Configuration) -> Invocation {
        Invocation(
            configuration: configuration, configurationPath: configurationPath, environment: environment,
            logSettings: logSettings, logger: logger)
    }
}
