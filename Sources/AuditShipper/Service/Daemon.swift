import AsyncHTTPClient
import Foundation
import Logging

/// Wires the configuration into a runnable daemon: client, sinks, state, cycle. `run`,
/// `once`, `check` and `replay` and the tests all build through here.
public struct Daemon: Sendable {
    public let configuration: Configuration
    public let client: APIClient
    public let sinks: [any Sink]
    /// Cycles run here, on the event loop of the HTTP connection.
    public let executor: EventLoopExecutor
    /// Shows the watchdog that cycles make progress.
    public let heartbeat: Heartbeat
    let http: HTTPClient
    let logger: Logger

    /// A daemon built on reload passes its predecessor's `executor` and `heartbeat`, so the
    /// cycle stays on the same thread and the watchdog keeps watching the same loop.
    public init(
        configuration: Configuration, key: AdminKey, logger: Logger,
        output: any ByteOutput = FileDescriptorOutput.standardOutput, retry: RetryPolicy = RetryPolicy(),
        executor: EventLoopExecutor = EventLoopExecutor(), heartbeat: Heartbeat = Heartbeat()
    ) throws {
        self.configuration = configuration
        self.logger = logger
        self.executor = executor
        self.heartbeat = heartbeat
        http = APIClient.makeHTTPClient(connectTimeout: min(configuration.api.requestTimeout, .seconds(10)))
        client = APIClient(
            http: http, baseURL: configuration.api.baseURL, key: key, organization: configuration.api.organization,
            timeout: configuration.api.requestTimeout, retry: retry, logger: logger, eventLoop: executor.eventLoop)
        sinks = try configuration.sinks.enumerated().map { index, settings throws -> any Sink in
            switch settings {
            case .stdout(let format): return StdoutSink(format: format, output: output)
            case .journald(let identifier): return JournaldSink(identifier: identifier)
            case .syslog(let syslog):
                do {
                    return try SyslogSink(settings: syslog, logger: logger)
                } catch {
                    throw ConfigurationError.invalid(
                        origin: "configuration", path: "sinks[\(index)].tls",
                        message: "cannot set up TLS: \(error) (check ca_file, cert_file and key_file)")
                }
            }
        }
    }

    /// One `limit=1` request, no retries: does the key work and is the API there?
    public func checkUpstream() async throws {
        var query = AuditLogQuery(filters: configuration.api.filters)
        query.limit = 1
        _ = try await client.fetch(query)
    }

    public func checkSinks() async throws {
        for sink in sinks { try await sink.check() }
    }

    /// Opens and locks the state file and returns the state to start from. A missing file is
    /// a first run: its state is written at once, so `start_at: now` means the first start.
    public func openState(environment: [String: String], now: Int64) throws(StateError) -> (StateStore, AuditState) {
        let store = try StateStore(path: configuration.resolvedStatePath(environment: environment))
        if let state = try store.load() {
            guard state.source == configuration.stateSource else {
                throw .otherSource(path: store.path, recorded: state.source, configured: configuration.stateSource)
            }
            return (store, state)
        }
        let state = AuditState(source: configuration.stateSource, startAt: configuration.startTime(now: now), now: now)
        try store.save(state)
        logger.notice(
            "first run, starting a new state",
            metadata: ["state.path": "\(store.path)", "state.start_at": "\(TimeSpec.format(state.startAt))"])
        return (store, state)
    }

    /// A runner for cycles that deliver to this daemon's sinks, on its event loop.
    public func makeRunner(
        state: AuditState, settings: CycleSettings? = nil, persist: @escaping @Sendable (AuditState) throws -> Void
    ) -> CycleRunner {
        CycleRunner(cycle: makeCycle(settings: settings, persist: persist), state: state, executor: executor)
    }

    /// A cycle from this daemon's client, sinks and settings.
    public func makeCycle(
        settings: CycleSettings? = nil, persist: @escaping @Sendable (AuditState) throws -> Void
    ) -> PollCycle {
        PollCycle(
            source: client, sinks: sinks, settings: settings ?? configuration.cycleSettings, logger: logger,
            heartbeat: heartbeat, persist: persist)
    }

    /// Closes the sinks' connections and the HTTP client; the daemon is done after this.
    public func shutdown() async {
        for sink in sinks { await sink.close() }
        try? await http.shutdown()
    }

    /// Runs `body`, then shuts the HTTP client down whether `body` threw or not.
    public func closing<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        let result: T
        do {
            result = try await body()
        } catch {
            await shutdown()
            throw error
        }
        await shutdown()
        return result
    }

    public static func now() -> Int64 { Int64(Date().timeIntervalSince1970) }
}
