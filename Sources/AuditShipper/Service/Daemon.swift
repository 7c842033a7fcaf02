import AsyncHTTPClient
import Foundation
import Logging
import NIOSSL

/// Wires the configuration into a runnable daemon: client, sinks, state, cycle. `run`,
/// `once`, `check` and `replay` and the tests all build through here.
public struct Daemon: Sendable {
    public let configuration: Configuration
    public let client: APIClient
    /// How many slices the cycle reads at once, learnt from what `client` sees.
    public let concurrency: AdaptiveConcurrency
    public let sinks: [any Sink]
    /// Cycles run here, on the event loop of the HTTP connection.
    public let executor: EventLoopExecutor
    /// Shows the watchdog that cycles make progress.
    public let heartbeat: Heartbeat
    /// What `metrics.listen` exports; one registry for the process, carried across reloads.
    public let metrics: DaemonMetrics
    let http: HTTPClient
    let logger: Logger

    /// Where a sink new to the state starts, by name (its `start_at`, resolved when built).
    public let sinkStarts: [String: Int64]
    /// The sinks' records of what their destinations took, beside the state file.
    let receiptLogs: [ReceiptLog]
    /// The proxy the API is reached through (`api.proxy`, else the environment's), if any.
    public let proxy: ProxySettings?
    /// Beside the state file for the commands that keep positions; else nothing is written.
    public let deadLetters: DeadLetterFile
    /// The group's lease and shared positions (`coordination:`), carried across reloads like
    /// the executor: a new member would have to wait for its own predecessor's lease.
    public let coordination: PostgresCoordination?
    /// The detection rules in force (`detections:`); nil when they are off.
    public let detector: Detector?

    /// A daemon built on reload passes its predecessor's `executor` and `heartbeat`, so the
    /// cycle stays on the same thread and the watchdog keeps watching the same loop. With
    /// `statePath` (the commands that keep positions: `run`, `once`), sinks that can tell what
    /// their destination took keep their receipts beside the state file.
    public init(
        configuration: Configuration, key: AdminKey, logger: Logger, statePath: String? = nil,
        output: any ByteOutput = FileDescriptorOutput.standardOutput, retry: RetryPolicy = RetryPolicy(),
        executor: EventLoopExecutor = EventLoopExecutor(), heartbeat: Heartbeat = Heartbeat(),
        metrics: DaemonMetrics = DaemonMetrics(version: AuditShipperVersion.current),
        coordination: PostgresCoordination? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws {
        self.configuration = configuration
        self.logger = logger
        self.executor = executor
        self.heartbeat = heartbeat
        self.metrics = metrics
        metrics.register(sinks: configuration.sinks.map(\.name))
        sinkStarts = configuration.sinkStarts(now: Daemon.now())
        let deadLetters = DeadLetterFile(path: statePath.map(DeadLetterFile.path(statePath:)))
        self.deadLetters = deadLetters
        switch ProxySettings.resolve(
            baseURL: configuration.api.baseURL, configured: configuration.api.proxy, environment: environment)
        {
        case .success(let proxy): self.proxy = proxy
        case .failure(let error):
            throw ConfigurationError.invalid(origin: "environment", path: error.origin, message: error.reason)
        }
        if let caFile = configuration.api.caFile {
            do {
                _ = try NIOSSLCertificate.fromPEMFile(caFile)
            } catch {
                throw ConfigurationError.invalid(
                    origin: "configuration", path: "api.tls.ca_file",
                    message: "cannot read '\(caFile)' as PEM certificates: \(error)")
            }
        }
        var receiptLogs: [ReceiptLog] = []
        sinks = try configuration.sinks.enumerated().map { index, entry throws -> any Sink in
            switch entry.settings {
            case .stdout(let format, let annotate):
                return StdoutSink(name: entry.name, format: format, annotate: annotate, output: output)
            case .journald(let identifier):
                let log = statePath.map { ReceiptLog(path: Self.sinkFilePath(statePath: $0, sink: entry.name)) }
                if let log { receiptLogs.append(log) }
                return JournaldSink(name: entry.name, identifier: identifier, receiptLog: log, logger: logger)
            case .file(let file):
                return FileSink(
                    settings: file, name: entry.name,
                    markPath: statePath.map { Self.sinkFilePath(statePath: $0, sink: entry.name, kind: "mark") },
                    logger: logger)
            case .syslog(let syslog):
                // A RELP collector's answers are the sink's receipts, as the journal's entries are.
                var log: ReceiptLog?
                if case .relp = syslog.transport, let statePath {
                    log = ReceiptLog(path: Self.sinkFilePath(statePath: statePath, sink: entry.name))
                    receiptLogs.append(log!)
                }
                do {
                    return try SyslogSink(
                        settings: syslog, name: entry.name, logger: logger, metrics: metrics, receiptLog: log)
                } catch {
                    throw ConfigurationError.invalid(
                        origin: "configuration", path: "sinks[\(index)].tls",
                        message: "cannot set up TLS: \(error) (check ca_file, cert_file and key_file)")
                }
            case .splunkHEC(let hec):
                let loader = SecretLoader(
                    fileKey: "sinks[\(index)].token_file", credential: "splunk-hec-token", variable: "SPLUNK_HEC_TOKEN",
                    what: "HEC token")
                guard let token = try loader.load(file: hec.tokenFile, environment: environment) else {
                    throw ConfigurationError.noSecret(path: "sinks[\(index)]", message: loader.missing)
                }
                // Splunk's answers are the sink's receipts once it says it indexed them.
                let log = statePath.map { ReceiptLog(path: Self.sinkFilePath(statePath: $0, sink: entry.name)) }
                if let log { receiptLogs.append(log) }
                do {
                    return try SplunkHECSink(
                        settings: hec, name: entry.name, token: token,
                        channelPath: statePath.map {
                            Self.sinkFilePath(statePath: $0, sink: entry.name, kind: "channel")
                        },
                        receiptLog: log, logger: logger, metrics: metrics, heartbeat: heartbeat)
                } catch let error as StateError {
                    throw error
                } catch {
                    throw ConfigurationError.invalid(
                        origin: "configuration", path: "sinks[\(index)].tls",
                        message: "cannot set up TLS: \(error) (check ca_file, cert_file and key_file)")
                }
            case .elasticsearch(let elastic):
                let credential: ElasticsearchSink.Credential?
                if let username = elastic.username {
                    let loader = SecretLoader(
                        fileKey: "sinks[\(index)].password_file", credential: "elasticsearch-password",
                        variable: "ELASTICSEARCH_PASSWORD", what: "Elasticsearch password")
                    guard let password = try loader.load(file: elastic.passwordFile, environment: environment) else {
                        throw ConfigurationError.noSecret(path: "sinks[\(index)]", message: loader.missing)
                    }
                    credential = .basic(username: username, password: password)
                } else {
                    let loader = SecretLoader(
                        fileKey: "sinks[\(index)].api_key_file", credential: "elasticsearch-api-key",
                        variable: "ELASTICSEARCH_API_KEY", what: "Elasticsearch API key")
                    credential = try loader.load(file: elastic.apiKeyFile, environment: environment).map { .apiKey($0) }
                }
                do {
                    return try ElasticsearchSink(
                        settings: elastic, name: entry.name, credential: credential, deadLetters: deadLetters,
                        logger: logger, metrics: metrics, heartbeat: heartbeat)
                } catch {
                    throw ConfigurationError.invalid(
                        origin: "configuration", path: "sinks[\(index)].tls",
                        message: "cannot set up TLS: \(error) (check ca_file, cert_file and key_file)")
                }
            }
        }
        self.receiptLogs = receiptLogs
        detector = try Detector.load(configuration.detections, logger: logger)?.0
        self.coordination =
            try coordination
            ?? PostgresCoordination.make(
                configuration: configuration, environment: environment, logger: logger, metrics: metrics,
                eventLoop: executor.eventLoop)
        // Last: nothing after it may throw, or a failed start (or reload) would leave the
        // client's connection pool running with nothing to shut it down.
        http = APIClient.makeHTTPClient(
            connectTimeout: min(configuration.api.requestTimeout, .seconds(10)), proxy: proxy,
            caFile: configuration.api.caFile)
        concurrency = AdaptiveConcurrency(maximum: configuration.api.maxConcurrency, metrics: metrics)
        client = APIClient(
            http: http, baseURL: configuration.api.baseURL, key: key, organization: configuration.api.organization,
            timeout: configuration.api.requestTimeout, maxResponseBytes: configuration.api.maxResponseBytes,
            proxy: proxy, caFile: configuration.api.caFile, retry: retry, logger: logger,
            eventLoop: executor.eventLoop, metrics: metrics,
            heartbeat: heartbeat, concurrency: concurrency)
    }

    /// A file a sink keeps beside the state: `<state file>.<kind>.<sink name>` (`receipts` for a
    /// journald, RELP or HEC sink's `ReceiptLog`, `mark` for a file sink's `FileMark`,
    /// `channel` for a HEC sink's `HECChannel`),
    /// the name cut down to characters safe in a file name, with a hash of the whole name when
    /// that changed it (so two names never share one).
    public static func sinkFilePath(statePath: String, sink: String, kind: String = "receipts") -> String {
        var safe = String(
            sink.unicodeScalars.map { scalar -> Character in
                scalar.isASCII
                    && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)
                        || "-_.".unicodeScalars.contains(scalar))
                    ? Character(scalar) : "_"
            })
        if safe != sink {
            // 32 bits, as the names already on disk were made.
            safe += "-" + String(FNV1a.hash32(sink.utf8), radix: 16)
        }
        return "\(statePath).\(kind).\(safe)"
    }

    /// One `limit=1` request, no retries: does the key work and is the API there?
    public func checkUpstream() async throws {
        var query = AuditLogQuery(filters: configuration.api.filters)
        query.limit = 1
        _ = try await client.fetch(query)
    }

    /// Each sink's check; the ones that fail, with why (name → error), in configuration order.
    public func failingSinks() async -> [(name: String, error: String)] {
        var failing: [(name: String, error: String)] = []
        for sink in sinks {
            do { try await sink.check() } catch { failing.append((sink.name, "\(error)")) }
        }
        return failing
    }

    /// Opens and locks the state file and returns the state to start from. A missing file is
    /// a first run: its state is written at once, so `start_at: now` means the first start.
    public func openState(environment: [String: String], now: Int64) throws(StateError) -> (StateStore, AuditState) {
        let store = try StateStore(path: configuration.resolvedStatePath(environment: environment))
        // Readable receipts, or a clear refusal now (a link planted there is 73 like the state's).
        for log in receiptLogs { _ = try log.read() }
        try deadLetters.open()
        if let state = try store.load() {
            guard state.source == configuration.stateSource else {
                throw .otherSource(path: store.path, recorded: state.source, configured: configuration.stateSource)
            }
            if state.version < AuditState.currentVersion {
                logger.notice(
                    "state file of an earlier version: every sink starts from its position, and it is written as version \(AuditState.currentVersion) at the next save",
                    metadata: ["state.path": "\(store.path)", "state.version": "\(state.version)"])
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

    /// A runner for cycles that deliver to this daemon's sinks, on its event loop. Without
    /// `coordinated` (`replay`, which moves no position) every sink is delivered to, whoever
    /// holds the group's lease, and nothing is written to the group.
    public func makeRunner(
        state: AuditState, settings: CycleSettings? = nil, writer: StateWriter, coordinated: Bool = true
    ) -> CycleRunner {
        CycleRunner(
            cycle: makeCycle(settings: settings, writer: writer, coordinated: coordinated), state: state,
            executor: executor)
    }

    /// A cycle from this daemon's client, sinks and settings.
    public func makeCycle(
        settings: CycleSettings? = nil, writer: StateWriter, coordinated: Bool = true
    ) -> PollCycle {
        PollCycle(
            source: client, sinks: sinks, sinkStarts: sinkStarts, sinkKinds: configuration.defaultNamedKinds,
            settings: settings ?? configuration.cycleSettings,
            logger: logger, heartbeat: heartbeat, metrics: metrics, deadLetters: deadLetters,
            coordination: coordinated ? coordination : nil,
            shared: Set(configuration.sinks.filter(\.isShared).map(\.name)), detector: detector,
            minLevels: configuration.sinks.reduce(into: [:]) { levels, sink in levels[sink.name] = sink.minLevel },
            concurrency: concurrency, writer: writer)
    }

    /// Closes the sinks' connections and the HTTP client; the daemon is done after this.
    /// `resigning` gives the group's lease up too (the process ends); a daemon a reload
    /// replaced leaves it to its successor, which holds the same coordination.
    public func shutdown(resigning: Bool = true) async {
        if resigning { await coordination?.resign() }
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
