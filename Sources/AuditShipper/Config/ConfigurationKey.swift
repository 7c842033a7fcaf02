/// One key of `config.yaml` outside `sinks`' entries: its path, whether an environment
/// variable may set it, and what a reload may do with it. `all` is the one table of them:
/// the environment overrides (`ConfigurationLoader.applyEnvironment`), the reload's list of
/// what changed (`Configuration.changedKeys`) and its refusal (`Configuration.reloadRefusal`)
/// all read it, and `ConfigurationKeyTests` holds it to the documented table and to
/// `config/config.example.yaml`.
public struct ConfigurationKey: Sendable {
    public enum Environment: Sendable {
        /// `OPENAI_AUDITD_<PATH>` sets it (empty or `null`: null).
        case scalar
        /// `OPENAI_AUDITD_<PATH>` sets it as a comma-separated list.
        case list
        /// No variable sets it (`sinks`, or a key whose children are set one by one).
        case none
    }

    public let path: String
    public let environment: Environment
    /// A reload that changes it is refused and the running configuration kept: the state file
    /// belongs to the source (base URL, organization, filters) and the path the daemon started
    /// with, and the metrics endpoint is bound once, before READY=1.
    public let fixedAtStart: Bool
    /// Whether two configurations differ on it (the environment resolves `state.path`).
    let differs: @Sendable (Configuration, Configuration, [String: String]) -> Bool

    init(
        _ path: String, _ environment: Environment = .scalar, fixedAtStart: Bool = false,
        differs: @escaping @Sendable (Configuration, Configuration, [String: String]) -> Bool
    ) {
        self.path = path
        self.environment = environment
        self.fixedAtStart = fixedAtStart
        self.differs = differs
    }

    init<Value: Equatable & Sendable>(
        _ path: String, _ environment: Environment = .scalar, fixedAtStart: Bool = false,
        _ value: @escaping @Sendable (Configuration) -> Value
    ) {
        self.init(path, environment, fixedAtStart: fixedAtStart) { a, b, _ in value(a) != value(b) }
    }

    public static let all: [ConfigurationKey] =
        [
            ConfigurationKey("api.base_url", fixedAtStart: true) { $0.api.baseURL },
            ConfigurationKey("api.admin_key_file") { $0.api.adminKeyFile },
            ConfigurationKey("api.organization", fixedAtStart: true) { $0.api.organization },
            ConfigurationKey("api.request_timeout") { $0.api.requestTimeout },
            ConfigurationKey("api.page_size") { $0.api.pageSize },
            ConfigurationKey("api.max_concurrency") { $0.api.maxConcurrency },
            ConfigurationKey("api.include_tenant_events") { $0.api.includeTenantEvents },
            ConfigurationKey("api.max_response_bytes") { $0.api.maxResponseBytes },
            ConfigurationKey("api.proxy") { $0.api.proxy },
            ConfigurationKey("api.tls.ca_file") { $0.api.caFile },
            // As the state compares them (`StateSource`): as sets, so that the same filters in
            // another order or with a repeat are no change. Set from the environment one by one.
            ConfigurationKey("api.filters", .none, fixedAtStart: true) { $0.api.filters.normalized },
        ]
        + AuditLogFilters.fields.map { field in
            ConfigurationKey("api.filters.\(field.name)", .list) { $0.api.filters[keyPath: field.values] }
        }
        + [
            ConfigurationKey("poll.interval") { $0.poll.interval },
            ConfigurationKey("poll.lookback") { $0.poll.lookback },
            ConfigurationKey("poll.start_at") { $0.poll.startAt },
            ConfigurationKey("poll.max_window_events") { $0.poll.maxWindowEvents },
            ConfigurationKey("poll.max_window_bytes") { $0.poll.maxWindowBytes },
            ConfigurationKey("state.path", fixedAtStart: true) { a, b, environment in
                a.resolvedStatePath(environment: environment) != b.resolvedStatePath(environment: environment)
            },
            ConfigurationKey("sinks", .none) { $0.sinks },
            // Which group a member is in, and where its lease is, is what it started with: a
            // reload moving it would leave a lease held elsewhere.
            ConfigurationKey("coordination.type", fixedAtStart: true) { $0.coordination == nil },
            ConfigurationKey("coordination.url", fixedAtStart: true) { $0.coordination?.url },
            ConfigurationKey("coordination.password_file", fixedAtStart: true) { $0.coordination?.passwordFile },
            ConfigurationKey("coordination.group", fixedAtStart: true) { $0.coordination?.group },
            ConfigurationKey("coordination.lease", fixedAtStart: true) { $0.coordination?.lease },
            ConfigurationKey("coordination.schema", fixedAtStart: true) { $0.coordination?.schema },
            ConfigurationKey("metrics.listen", fixedAtStart: true) { $0.metricsListen },
            ConfigurationKey("detections.enabled") { $0.detections.enabled },
            ConfigurationKey("detections.builtin_rules") { $0.detections.builtinRules },
            ConfigurationKey("detections.rules", .list) { $0.detections.rules },
            ConfigurationKey("detections.disable", .list) { $0.detections.disable },
            ConfigurationKey("log.level") { $0.logLevel },
            ConfigurationKey("log.format") { $0.logFormat },
        ]

    /// The names directly under `parent` ("" for the top level), in the table's order: what
    /// `ConfigurationReader` accepts there, so a key the table lacks is an unknown key.
    static func children(of parent: String) -> [String] {
        var names: [String] = []
        for key in all {
            let rest: Substring
            if parent.isEmpty {
                rest = key.path[...]
            } else if key.path.hasPrefix(parent + ".") {
                rest = key.path.dropFirst(parent.count + 1)
            } else {
                continue
            }
            let name = String(rest.prefix { $0 != "." })
            if !names.contains(name) { names.append(name) }
        }
        return names
    }

    /// The keys an environment variable may set, by the variable's name.
    static let byEnvironmentName: [String: ConfigurationKey] = Dictionary(
        uniqueKeysWithValues: all.filter { $0.environment != .none }.map {
            (ConfigurationLoader.environmentName(for: $0.path), $0)
        })
}
