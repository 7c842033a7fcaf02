import Logging

/// Everything `config.yaml` can say, with DESIGN.md's defaults. See `ConfigurationLoader`
/// for the key table and the rules each key follows.
public struct Configuration: Sendable, Equatable {
    /// The journald sink's `SYSLOG_IDENTIFIER` for event entries unless `identifier` says
    /// otherwise; the daemon's own lines keep `openai-auditd`.
    public static let journaldIdentifier = "openai-audit"

    public struct API: Sendable, Equatable {
        public var baseURL = "https://api.openai.com/v1"
        public var adminKeyFile: String?
        public var organization: String?
        public var requestTimeout: Duration = .seconds(30)
        public var pageSize = 100
        /// The most requests given the API at once while catching up (`AdaptiveConcurrency`).
        public var maxConcurrency = 4
        public var includeTenantEvents = TenantEvents.auto
        public var filters = AuditLogFilters()
        /// The largest response body accepted, after decompression: a page of 100 events is far
        /// below 1 MiB, and an upstream that sends more must not take the machine's memory.
        public var maxResponseBytes = 32 << 20
        /// `http://[user:password@]host:port`; null: the environment's (`HTTPS_PROXY`, ...).
        public var proxy: String?
        /// Trust roots for the API instead of the system's (a TLS-inspecting proxy's CA).
        public var caFile: String?
    }

    public enum StartAt: Sendable, Equatable {
        case now
        case beginning
        /// Unix seconds, or relative seconds before the first run (`-7d`).
        case time(String)

        /// The Unix second this stands for at `now`.
        public func resolved(now: Int64) -> Int64 {
            switch self {
            case .now: now
            case .beginning: 0
            case .time(let text): TimeSpec.time(text, now: now) ?? now
            }
        }
    }

    public struct Poll: Sendable, Equatable {
        public var interval: Duration = .seconds(60)
        public var lookback: Int64 = 600
        public var startAt: StartAt = .now
        public var maxWindowEvents = 10_000
        public var maxWindowBytes = 256 << 20
    }

    public enum SinkSettings: Sendable, Equatable {
        /// `annotate`: JSON lines carry what the detection rules found (`EventAnnotation`).
        case stdout(format: EventFormat, annotate: Bool = false)
        case journald(identifier: String)
        case syslog(SyslogSettings)
        case file(FileSettings)
        case splunkHEC(SplunkHECSettings)
        case elasticsearch(ElasticsearchSettings)

        /// The name a sink has without `name:`: its type, and for syslog and HTTP sinks the URL
        /// (file: the path) too.
        public var defaultName: String {
            switch self {
            case .stdout: "stdout"
            case .journald: "journald"
            case .syslog(let settings): "syslog \(settings.url)"
            case .file(let settings): "file \(settings.path)"
            case .splunkHEC(let settings): "splunk_hec \(settings.http.url)"
            case .elasticsearch(let settings): "elasticsearch \(settings.http.url)"
            }
        }
    }

    /// One entry of `sinks:`: what it is, and the name and start its position goes by.
    public struct SinkEntry: Sendable, Equatable {
        /// Unique among the sinks; keys the sink's position in the state file.
        public var name: String
        /// Where the sink starts when it is new to an existing state (nil: where the others are).
        public var startAt: StartAt?
        /// `shared:`; nil: by the sink's type (`isShared`). Matters only with `coordination`.
        public var shared: Bool?
        /// `min_level`: only events the rules raised at least this far are delivered (an
        /// alerts-only destination); the position moves over the rest. nil: every event.
        public var minLevel: SigmaLevel?
        public var settings: SinkSettings

        public init(
            _ settings: SinkSettings, name: String? = nil, startAt: StartAt? = nil, shared: Bool? = nil,
            minLevel: SigmaLevel? = nil
        ) {
            self.settings = settings
            self.name = name ?? settings.defaultName
            self.startAt = startAt
            self.shared = shared
            self.minLevel = minLevel
        }
    }

    /// A `type: syslog` sink.
    public struct SyslogSettings: Sendable, Equatable {
        public enum Transport: Sendable, Equatable {
            case unix(path: String)
            case udp(host: String, port: Int)
            case tcp(host: String, port: Int)
            case tls(host: String, port: Int)
            /// `relp://` (`tls` false) and `relp+tls://`.
            case relp(host: String, port: Int, tls: Bool)
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
        /// Bounds connecting, the TLS handshake and every write: a collector that stops
        /// reading fails the batch instead of holding the cycle.
        public var timeout: Duration = .seconds(30)
        public var caFile: String?
        public var certFile: String?
        public var keyFile: String?
        public var serverName: String?
        /// RELP: how many messages may be unanswered at once.
        public var window = 128

        public init() {}
    }

    /// A `type: file` sink.
    public struct FileSettings: Sendable, Equatable {
        /// Absolute; where the packaged units give the service a directory of its own.
        public var path = "/var/log/openai-auditd/audit.json"
        public var format = EventFormat.json
        /// Set on a file the sink creates, whatever the umask.
        public var mode = 0o640
        /// The file's group, so an agent's user in it can read the file.
        public var group: Group?
        /// Data (and a new file's directory entry) on disk before the position moves.
        public var fsync = true
        /// JSON lines carry what the detection rules found (`EventAnnotation`).
        public var annotate = false

        public struct Group: Sendable, Equatable {
            public var name: String
            public var id: UInt32
            public init(name: String, id: UInt32) {
                self.name = name
                self.id = id
            }
        }

        public init(path: String = "/var/log/openai-auditd/audit.json") { self.path = path }
    }

    public var api = API()
    public var poll = Poll()
    /// nil: `$STATE_DIRECTORY/state.json` under systemd, else `/var/lib/openai-auditd/state.json`.
    public var statePath: String?
    public var sinks: [SinkEntry] = [SinkEntry(.stdout(format: .json))]
    /// Two hosts, one trail: a lease and the shared sinks' positions in PostgreSQL; nil: alone.
    public var coordination: CoordinationSettings?
    /// Where `/metrics`, `/healthz` and `/readyz` are served; nil: nowhere.
    public var metricsListen: ListenAddress?
    public var detections = Detections()

    /// `detections:`: the Sigma rules evaluated as events pass (`Detector`).
    public struct Detections: Sendable, Equatable {
        /// Where the package installs the rules it ships.
        public static let packagedRules = "/usr/share/openai-auditd/rules"
        public var enabled = true
        /// The shipped rules' folder; nil: none of them.
        public var builtinRules: String? = Detections.packagedRules
        /// The operator's own rule files and folders.
        public var rules: [String] = []
        /// Rule ids that mark nothing (a correlation still counts a disabled rule it names).
        public var disable: [String] = []
    }

    public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }
    public var logLevel: Logger.Level = .info
    /// `auto` (the journal's priority prefixes under systemd, else text), `text` or `json`.
    public var logFormat: LogFormat = .auto

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
            lookback: poll.lookback, maxWindowEvents: poll.maxWindowEvents, maxWindowBytes: poll.maxWindowBytes)
    }

    /// The first run's window start for `start_at`.
    public func startTime(now: Int64) -> Int64 {
        poll.startAt.resolved(now: now)
    }

    /// The sinks that say where they start when they are new to the state, by name.
    /// The sinks known by their default name, which carries their URL or path (`syslog
    /// tcp://…`, `file /…`): name → that kind's part of it, so that a sink pointed elsewhere
    /// keeps its position (`AuditState.reconcile`). A sink with a `name:` keeps it anyway.
    public var defaultNamedKinds: [String: String] {
        var kinds: [String: String] = [:]
        for sink in sinks where sink.name == sink.settings.defaultName {
            // `defaultName` is `<type> <url or path>` where it carries one (`stdout` and
            // `journald` do not): its first word and the space name the kind.
            guard let space = sink.name.firstIndex(of: " ") else { continue }
            kinds[sink.name] = String(sink.name[...space])
        }
        return kinds
    }

    public func sinkStarts(now: Int64) -> [String: Int64] {
        var starts: [String: Int64] = [:]
        for sink in sinks { if let start = sink.startAt { starts[sink.name] = start.resolved(now: now) } }
        return starts
    }
}
