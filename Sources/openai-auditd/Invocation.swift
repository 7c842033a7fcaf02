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
    let logger: Logger

    static func perform(_ options: CommonOptions, _ body: (Invocation) async throws -> Void) async throws {
        // A closed stdout must surface as EPIPE from write(2), not kill the process.
        signal(SIGPIPE, SIG_IGN)
        let environment = ProcessInfo.processInfo.environment
        do {
            let path = ConfigurationLoader.path(flag: options.config, environment: environment)
            let configuration = try ConfigurationLoader.load(file: path, environment: environment)
            LogLevelSetting.shared.configure(
                flag: options.logLevel.flatMap { Logger.Level(rawValue: $0.rawValue) }, file: configuration.logLevel)
            LoggingSystem.bootstrap { label in
                LevelFollowingHandler(wrapped: StreamLogHandler.standardError(label: label))
            }
            try await body(
                Invocation(
                    configuration: configuration, configurationPath: path, environment: environment,
                    logger: Logger(label: "openai-auditd")))
        } catch {
            let (code, message) = Self.exit(for: error)
            FileHandle.standardError.write(Data("openai-auditd: \(message)\n".utf8))
            throw ExitCode(code)
        }
    }

    func key() throws -> AdminKey {
        try AdminKeyLoader.load(configuration: configuration, environment: environment)
    }

    /// A daemon whose key, upstream and sinks were checked: a rejected key stops here (77),
    /// a refused filter too (78); an unreachable API only warns, the loop will retry. A sink
    /// that cannot be reached only warns too: the others must not go blind because of it,
    /// and it catches up when it is back. `keepsPositions` for the commands that move the
    /// state (`run`, `once`). A reload passes the daemon it replaces, whose executor and
    /// heartbeat carry over. Returns the daemon and the sinks that failed their check.
    func startDaemon(
        keepsPositions: Bool, replacing previous: Daemon? = nil
    ) async throws -> (Daemon, failing: [(name: String, error: String)]) {
        let statePath = keepsPositions ? configuration.resolvedStatePath(environment: environment) : nil
        let daemon =
            if let previous {
                try Daemon(
                    configuration: configuration, key: try key(), logger: logger, statePath: statePath,
                    executor: previous.executor, heartbeat: previous.heartbeat)
            } else {
                try Daemon(configuration: configuration, key: try key(), logger: logger, statePath: statePath)
            }
        do {
            try await daemon.checkUpstream()
        } catch let error as UpstreamError where error.isRetryable {
            logger.warning("the API is not reachable yet, will retry", metadata: ["error": "\(error)"])
        } catch {
            await daemon.shutdown()
            throw error
        }
        let failing = await daemon.failingSinks()
        for sink in failing {
            logger.warning(
                "sink is not reachable; the other sinks go on, and it catches up when it is back",
                metadata: ["sink": "\(sink.name)", "error": "\(sink.error)"])
        }
        return (daemon, failing)
    }

    /// The same invocation with a reloaded configuration.
    func with(_ configuration: Configuration) -> Invocation {
        Invocation(
            configuration: configuration, configurationPath: configurationPath, environment: environment,
            logger: logger)
    }

    static func exit(for error: Error) -> (Int32, String) {
        switch error {
        case let error as ConfigurationError: return (78, "\(error)")
        case let error as StateError: return (error.exitCode, "\(error)")
        case let error as UpstreamError:
            switch error.underlying {
            case .keyRejected: return (77, "\(error)")
            case .badRequest: return (78, "\(error) (check api.filters and api.page_size)")
            default: return (69, "\(error)")
            }
        case let error as SinkError: return (74, "\(error)")
        case let error as ValidationError: return (64, error.message)
        default: return (70, "\(error)")
        }
    }
}

/// The log level in force: `--log-level` if given, else `log.level`, which a reload may change.
final class LogLevelSetting: Sendable {
    static let shared = LogLevelSetting()
    let state = Mutex<(flag: Logger.Level?, file: Logger.Level)>((nil, .info))

    func configure(flag: Logger.Level?, file: Logger.Level) { state.withLock { $0 = (flag, file) } }
    func reloaded(file: Logger.Level) { state.withLock { $0.file = file } }
    var level: Logger.Level { state.withLock { $0.flag ?? $0.file } }
}

/// A stderr handler whose level is read from `LogLevelSetting` at each call.
struct LevelFollowingHandler: LogHandler {
    var wrapped: StreamLogHandler

    var logLevel: Logger.Level {
        get { LogLevelSetting.shared.level }
        set {}
    }
    var metadata: Logger.Metadata {
        get { wrapped.metadata }
        set { wrapped.metadata = newValue }
    }
    var metadataProvider: Logger.MetadataProvider? {
        get { wrapped.metadataProvider }
        set { wrapped.metadataProvider = newValue }
    }
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { wrapped[metadataKey: key] }
        set { wrapped[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        wrapped.log(event: event)
    }
}
