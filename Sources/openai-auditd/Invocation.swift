import ArgumentParser
import AuditShipper
import Foundation
import Logging

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
    let environment: [String: String]
    let logger: Logger

    static func perform(_ options: CommonOptions, _ body: (Invocation) async throws -> Void) async throws {
        // A closed stdout must surface as EPIPE from write(2), not kill the process.
        signal(SIGPIPE, SIG_IGN)
        let environment = ProcessInfo.processInfo.environment
        do {
            let path = ConfigurationLoader.path(flag: options.config, environment: environment)
            let configuration = try ConfigurationLoader.load(file: path, environment: environment)
            let level = options.logLevel.flatMap { Logger.Level(rawValue: $0.rawValue) } ?? configuration.logLevel
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
            try await body(
                Invocation(
                    configuration: configuration, environment: environment, logger: Logger(label: "openai-auditd")))
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
    /// a refused filter too (78); an unreachable API only warns, the loop will retry.
    func startDaemon() async throws -> Daemon {
        let daemon = try Daemon(configuration: configuration, key: try key(), logger: logger)
        do {
            try await daemon.checkUpstream()
        } catch let error as UpstreamError where error.isRetryable {
            logger.warning("the API is not reachable yet, will retry", metadata: ["error": "\(error)"])
        } catch {
            await daemon.shutdown()
            throw error
        }
        do {
            try await daemon.checkSinks()
        } catch {
            await daemon.shutdown()
            throw error
        }
        return daemon
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
