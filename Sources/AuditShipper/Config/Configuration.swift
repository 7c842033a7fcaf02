import Logging

/// Everything `config.yaml` can say, with DESIGN.md's defaults. See `ConfigurationLoader`
/// for the key table and the rules each key follows.
public struct Configuration: Sendable, Equatable {
    public struct API: Sendable, Equatable {
        public var baseURL = "https://api.openai.com/v1"
        public var adminKeyFile: String?
        public var organization: String?
        public var requestTimeout: Duration = .seconds(30)
        public var pageSize = 100
        public var includeTenantEvents = false
        public var filters = AuditLogFilters()
    }

    public enum StartAt: Sendable, Equatable {
        case now
        case beginning
        /// Unix seconds, or relative seconds before the first run (`-7d`).
        case time(String)
    }

    public struct Poll: Sendable, Equatable {
        public var interval: Duration = .seconds(60)
        public var lookback: Int64 = 600
        public var startAt: StartAt = .now
        public var maxWindowEvents = 10_000
    }

    public enum SinkSettings: Sendable, Equatable {
        case stdout(format: EventFormat)
        case journald(identifier: String)
        case syslog(SyslogSettings)
    }

    /// A `type: syslog` sink.
    public struct SyslogSettings: Sendable, Equatable {
        public enum Transport: Sendable, Equatable {
            case unix(path: String)
            case udp(host: String, port: Int)
            case tcp(host: String, port: Int)
            case tls(host: String, port: Int)
        }
        public enum LineProtocol: String, Sendable, CaseIterable { case rfc5424, rfc3164 }
        public enum Framing: String, Sendable, CaseIterable {
            case octetCounting = "octet-counting"
            case newline
        }

        public var url = "unix:///dev/log"
        public var transport = Transport.unix(path: "/dev/log")
        public var lineProtocol = LineProtocol.rfc5424
        public var payload = SyslogPayload.json
        public var framing = Framing.octetCounting
        public var facility = 16
        public var hostname: String?
        public var enterpriseID = 32473
        public var bom = false
        public var caFile: String?
        public var certFile: String?
        public var keyFile: String?
        public var serverName: String?

        public init() {}
    }

    public var api = API()
    public var poll = Poll()
    /// nil: `$STATE_DIRECTORY/state.json` under systemd, else `/var/lib/openai-auditd/state.json`.
    public var statePath: String?
    public var sinks: [SinkSettings] = [.stdout(format: .json)]
    public var metricsListen: String?
    public var logLevel: Logger.Level = .info

    public init() {}

    /// The state file this configuration uses in `environment`.
    public func resolvedStatePath(environment: [String: String]) -> String {
        if let statePath { return statePath }
        if let directory = environment["STATE_DIRECTORY"]?.split(separator: ":").first, !directory.isEmpty {
            return "\(directory)/state.json"
        }
        return "/var/lib/openai-auditd/state.json"
    }

    public var stateSource: StateSource {
        StateSource(baseURL: api.baseURL, organization: api.organization, filters: api.filters)
    }

    public var cycleSettings: CycleSettings {
        CycleSettings(
            filters: api.filters, pageSize: api.pageSize, includeTenantEvents: api.includeTenantEvents,
            lookback: poll.lookback, maxWindowEvents: poll.maxWindowEvents)
    }

    /// The first run's window start for `start_at`.
    public func startTime(now: Int64) -> Int64 {
        switch poll.startAt {
        case .now: now
        case .beginning: 0
        case .time(let text): TimeSpec.time(text, now: now) ?? now
        }
    }
}
