import Foundation
import Logging

/// Turns the tree into a `Configuration`, key by key; every failure names the key's path.
struct ConfigurationReader {
    func configuration(_ root: ConfigNode) throws(ConfigurationError) -> Configuration {
        var config = Configuration()
        let top = try fields(root, "", allowed: ConfigurationKey.children(of: ""))
        if let api = top["api"] { config.api = try self.api(api) }
        if let poll = top["poll"] { config.poll = try self.poll(poll, pageSize: config.api.pageSize) }
        if let state = top["state"] {
            let fields = try self.fields(state, "state", allowed: ConfigurationKey.children(of: "state"))
            config.statePath = try fields["path"].flatMap { node throws(ConfigurationError) in
                try string(node, "state.path")
            }
        }
        if let sinks = top["sinks"] { config.sinks = try self.sinks(sinks) }
        if let coordination = top["coordination"] { config.coordination = try self.coordination(coordination) }
        if let metrics = top["metrics"] {
            let fields = try self.fields(metrics, "metrics", allowed: ConfigurationKey.children(of: "metrics"))
            if let node = fields["listen"], let listen = try string(node, "metrics.listen") {
                guard let (host, port) = Self.hostAndPort(listen) else {
                    throw invalid(
                        node, "metrics.listen",
                        "'\(listen)' is not HOST:PORT (e.g. 127.0.0.1:9464, or [::1]:9464; null turns it off)")
                }
                config.metricsListen = Configuration.ListenAddress(host: host, port: port)
            }
        }
        if let detections = top["detections"] { config.detections = try self.detections(detections) }
        if let log = top["log"] {
            let fields = try self.fields(log, "log", allowed: ConfigurationKey.children(of: "log"))
            if let node = fields["level"] {
                let levels = Logger.Level.allCases.map(\.rawValue)
                config.logLevel = Logger.Level(rawValue: try choice(node, "log.level", levels))!
            }
            if let node = fields["format"] {
                config.logFormat = LogFormat(rawValue: try choice(node, "log.format", ["auto", "text", "json"]))!
            }
        }
        return config
    }

    func detections(_ node: ConfigNode) throws(ConfigurationError) -> Configuration.Detections {
        var detections = Configuration.Detections()
        let f = try fields(node, "detections", allowed: ConfigurationKey.children(of: "detections"))
        if let n = f["enabled"] { detections.enabled = try bool(n, "detections.enabled") }
        if let n = f["builtin_rules"] { detections.builtinRules = try string(n, "detections.builtin_rules") }
        if let n = f["rules"] { detections.rules = try strings(n, "detections.rules") }
        if let n = f["disable"] { detections.disable = try strings(n, "detections.disable") }
        return detections
    }

    func api(_ node: ConfigNode) throws(ConfigurationError) -> Configuration.API {
        var api = Configuration.API()
        let f = try fields(node, "api", allowed: ConfigurationKey.children(of: "api"))
        if let n = f["base_url"] { api.baseURL = try baseURL(n) }
        if let n = f["admin_key_file"] { api.adminKeyFile = try string(n, "api.admin_key_file") }
        if let n = f["organization"] { api.organization = try string(n, "api.organization") }
        if let n = f["request_timeout"] {
            api.requestTimeout = try duration(n, "api.request_timeout", .seconds(1)...(.seconds(600)))
        }
        if let n = f["page_size"] { api.pageSize = try integer(n, "api.page_size", 1...100) }
        if let n = f["max_concurrency"] { api.maxConcurrency = try integer(n, "api.max_concurrency", 1...32) }
        if let n = f["include_tenant_events"] {
            let text = try scalar(n, "api.include_tenant_events", expected: "auto, true or false")
            guard let mode = TenantEvents(rawValue: text.lowercased()) else {
                throw invalid(n, "api.include_tenant_events", "'\(text)' is not auto, true or false")
            }
            api.includeTenantEvents = mode
        }
        if let n = f["proxy"], let text = try string(n, "api.proxy") {
            if case .failure(let error) = ProxySettings.parse(text, origin: "api.proxy") {
                throw invalid(n, "api.proxy", error.reason)
            }
            api.proxy = text
        }
        if let n = f["tls"] {
            let tls = try fields(n, "api.tls", allowed: ConfigurationKey.children(of: "api.tls"))
            api.caFile = try tls["ca_file"].flatMap { node throws(ConfigurationError) in
                try string(node, "api.tls.ca_file")
            }
        }
        if let n = f["max_response_bytes"] {
            api.maxResponseBytes = try byteSize(n, "api.max_response_bytes", (1 << 20)...(1 << 30))
        }
        if let n = f["filters"] {
            let filters = try fields(n, "api.filters", allowed: ConfigurationKey.children(of: "api.filters"))
            for field in AuditLogFilters.fields {
                guard let node = filters[field.name] else { continue }
                api.filters[keyPath: field.values] = try strings(node, "api.filters.\(field.name)")
            }
        }
        return api
    }

    func poll(_ node: ConfigNode, pageSize: Int) throws(ConfigurationError) -> Configuration.Poll {
        var poll = Configuration.Poll()
        let f = try fields(node, "poll", allowed: ConfigurationKey.children(of: "poll"))
        if let n = f["interval"] { poll.interval = try duration(n, "poll.interval", .seconds(1)...(.seconds(86_400))) }
        if let n = f["lookback"] {
            let lookback = try duration(n, "poll.lookback", .zero...(.seconds(7 * 86_400)))
            guard lookback.components.attoseconds == 0 else {
                throw invalid(n, "poll.lookback", "must be whole seconds (the API's resolution)")
            }
            poll.lookback = lookback.components.seconds
        }
        if let n = f["start_at"] {
            guard let start = try startAt(n, "poll.start_at") else {
                throw invalid(n, "poll.start_at", "must not be null (expected now, beginning or a time)")
            }
            poll.startAt = start
        }
        if let n = f["max_window_events"] {
            poll.maxWindowEvents = try integer(n, "poll.max_window_events", 100...10_000_000)
            guard poll.maxWindowEvents >= pageSize else {
                throw invalid(n, "poll.max_window_events", "must be at least api.page_size (\(pageSize))")
            }
        }
        if let n = f["max_window_bytes"] {
            poll.maxWindowBytes = try byteSize(n, "poll.max_window_bytes", (1 << 20)...(64 << 30))
        }
        return poll
    }

    /// `now`, `beginning`, or a time (RFC 3339, Unix seconds, `-7d`); nil for null.
    func startAt(_ node: ConfigNode, _ path: String) throws(ConfigurationError) -> Configuration.StartAt? {
        guard let text = try string(node, path) else { return nil }
        switch text {
        case "now": return .now
        case "beginning": return .beginning
        default:
            guard
                TimeSpec.time(text, now: 0) != nil || text.hasPrefix("-") && TimeSpec.time(text, now: 1 << 40) != nil
            else {
                throw invalid(
                    node, path,
                    "'\(text)' is not a time (expected now, beginning, RFC 3339 like 2026-11-01T00:00:00Z, Unix seconds, or -7d/-12h/-30m)"
                )
            }
            return .time(text)
        }
    }

    func sinks(_ node: ConfigNode) throws(ConfigurationError) -> [Configuration.SinkEntry] {
        guard case .list(let items) = node.value, !items.isEmpty else {
            throw invalid(node, "sinks", "expected a list of one or more sinks, e.g. '- type: stdout'")
        }
        var sinks: [Configuration.SinkEntry] = []
        for (index, item) in items.enumerated() {
            let path = "sinks[\(index)]"
            let settings = try sink(item, path)
            let common = try fields(item, path, allowed: Self.sinkKeys(settings))
            var name: String?
            if let n = common["name"] {
                name = try string(n, "\(path).name")
                if let text = name, text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                    throw invalid(n, "\(path).name", "must not contain control characters")
                }
            }
            let start = try common["start_at"].flatMap { node throws(ConfigurationError) in
                try startAt(node, "\(path).start_at")
            }
            let shared = try common["shared"].map { node throws(ConfigurationError) in
                try bool(node, "\(path).shared")
            }
            let minLevel = try common["min_level"].map { node throws(ConfigurationError) in
                // `choice` accepts only the names, so the level is there.
                SigmaLevel(name: try choice(node, "\(path).min_level", SigmaLevel.allCases.map(\.description)))!
            }
            let entry = Configuration.SinkEntry(
                settings, name: name, startAt: start, shared: shared, minLevel: minLevel)
            // The name keys the sink's position: two sinks under one name would share it.
            if let other = sinks.firstIndex(where: { $0.name == entry.name }) {
                throw invalid(
                    common["name"] ?? item, "\(path).name",
                    "'\(entry.name)' is also the name of sinks[\(other)]; each sink needs its own name (add 'name:' to one of them)"
                )
            }
            sinks.append(entry)
        }
        return sinks
    }

    /// Every key a sink of this type takes: the common ones (`type`, `name`, `start_at`,
    /// `shared`, `min_level`), then its own.
    static func sinkKeys(_ settings: Configuration.SinkSettings) -> [String] {
        let own: [String] =
            switch settings {
            case .stdout: ["format", "annotate"]
            case .journald: ["identifier"]
            case .file: ["path", "format", "mode", "group", "fsync", "annotate"]
            case .syslog:
                [
                    "url", "protocol", "payload", "framing", "facility", "hostname", "enterprise_id", "tls", "bom",
                    "timeout", "window",
                ]
            case .splunkHEC:
                [
                    "url", "token_file", "index", "sourcetype", "source", "host", "acknowledgements", "ack_timeout",
                ] + httpSinkKeys
            case .elasticsearch:
                [
                    "url", "urls", "index", "pipeline", "api_key_file", "username", "password_file", "on_rejected",
                ] + httpSinkKeys
            }
        return ["type", "name", "start_at", "shared", "min_level"] + own
    }

    /// The keys every HTTP sink takes (`httpSink`).
    static let httpSinkKeys = ["timeout", "gzip", "max_request_bytes", "tls", "proxy"]

    /// One sink's type-specific settings.
    func sink(_ item: ConfigNode, _ path: String) throws(ConfigurationError) -> Configuration.SinkSettings {
        guard case .map(let pairs) = item.value, let typeNode = pairs.first(where: { $0.key == "type" })?.value
        else {
            throw invalid(
                item, path,
                "each sink is a mapping with a 'type' (stdout, journald, syslog, file, splunk_hec or elasticsearch)")
        }
        let types = ["stdout", "journald", "syslog", "file", "splunk_hec", "elasticsearch"]
        switch try choice(typeNode, "\(path).type", types) {
        case "stdout":
            let f = try fields(item, path, allowed: Self.sinkKeys(.stdout(format: .json)))
            return .stdout(
                format: try f["format"].map { n throws(ConfigurationError) in try format(n, path) } ?? .json,
                annotate: try f["annotate"].map { n throws(ConfigurationError) in try bool(n, "\(path).annotate") }
                    ?? false)
        case "file":
            return .file(try file(item, path))
        case "splunk_hec":
            return .splunkHEC(try splunkHEC(item, path))
        case "elasticsearch":
            return .elasticsearch(try elasticsearch(item, path))
        case "journald":
            let f = try fields(item, path, allowed: Self.sinkKeys(.journald(identifier: "")))
            var identifier = Configuration.journaldIdentifier
            if let n = f["identifier"] {
                guard let text = try string(n, "\(path).identifier") else {
                    throw invalid(n, "\(path).identifier", "must not be null")
                }
                identifier = text
            }
            return .journald(identifier: identifier)
        default:
            return .syslog(try syslog(item, path))
        }
    }

    /// A line format (`sinks[i].format`), one of `EventFormat`'s.
    func format(_ node: ConfigNode, _ path: String) throws(ConfigurationError) -> EventFormat {
        EventFormat(rawValue: try choice(node, "\(path).format", EventFormat.allCases.map(\.rawValue)))!
    }

    func file(_ node: ConfigNode, _ path: String) throws(ConfigurationError) -> Configuration.FileSettings {
        let f = try fields(node, path, allowed: Self.sinkKeys(.file(Configuration.FileSettings())))
        var settings = Configuration.FileSettings()
        if let n = f["path"] {
            guard let text = try string(n, "\(path).path") else { throw invalid(n, "\(path).path", "must not be null") }
            // systemd starts the service in /: a relative path would land wherever that is.
            guard text.hasPrefix("/") else {
                throw invalid(
                    n, "\(path).path",
                    "'\(text)' is not an absolute path (write it from /, e.g. /var/log/openai-auditd/audit.json)")
            }
            var info = stat()
            guard !text.hasSuffix("/"), !(stat(text, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR) else {
                throw invalid(
                    n, "\(path).path",
                    "'\(text)' is a directory; give the path of a file in it, e.g. \(text.hasSuffix("/") ? text : text + "/")audit.json"
                )
            }
            settings.path = text
        }
        if let n = f["format"] { settings.format = try format(n, path) }
        if let n = f["mode"] {
            let text = try scalar(n, "\(path).mode", expected: "an octal mode such as \"0640\"")
            guard (3...4).contains(text.count), text.allSatisfy({ ("0"..."7").contains($0) }),
                let mode = Int(text, radix: 8), mode <= 0o777
            else {
                throw invalid(n, "\(path).mode", "'\(text)' is not an octal file mode such as \"0640\"")
            }
            // An audit trail others may write is one anybody can edit.
            guard mode & 0o002 == 0 else {
                throw invalid(
                    n, "\(path).mode",
                    "'\(text)' lets every user write the audit trail; drop the last digit's 2 (e.g. \"0640\")")
            }
            settings.mode = mode
        }
        if let n = f["group"] {
            guard let text = try string(n, "\(path).group") else {
                throw invalid(n, "\(path).group", "must not be null")
            }
            guard let id = UInt32(text) ?? Self.groupID(named: text) else {
                throw invalid(n, "\(path).group", "there is no group '\(text)' on this system (getent group \(text))")
            }
            settings.group = .init(name: text, id: id)
        }
        if let n = f["fsync"] { settings.fsync = try bool(n, "\(path).fsync") }
        if let n = f["annotate"] { settings.annotate = try bool(n, "\(path).annotate") }
        return settings
    }

    static func groupID(named name: String) -> UInt32? {
        var group = Glibc.group()
        var result: UnsafeMutablePointer<Glibc.group>?
        var buffer = [CChar](repeating: 0, count: 16 << 10)
        guard getgrnam_r(name, &group, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return group.gr_gid
    }

    func syslog(_ node: ConfigNode, _ path: String) throws(ConfigurationError) -> Configuration.SyslogSettings {
        let f = try fields(node, path, allowed: Self.sinkKeys(.syslog(Configuration.SyslogSettings())))
        var settings = Configuration.SyslogSettings()
        if let n = f["url"] {
            guard let text = try string(n, "\(path).url") else { throw invalid(n, "\(path).url", "must not be null") }
            settings.url = text
            settings.transport = try transport(text, n, "\(path).url")
        }
        if let n = f["protocol"] {
            settings.lineProtocol = .init(rawValue: try choice(n, "\(path).protocol", ["rfc5424", "rfc3164"]))!
        }
        if let n = f["payload"] {
            settings.payload = SyslogPayload(rawValue: try choice(n, "\(path).payload", ["json", "cef", "leef"]))!
        }
        if let n = f["framing"] {
            settings.framing = .init(rawValue: try choice(n, "\(path).framing", ["octet-counting", "newline"]))!
        }
        if let n = f["facility"] {
            settings.facility = SyslogOrigin.facilities.firstIndex(
                of: try choice(n, "\(path).facility", SyslogOrigin.facilities))!
        }
        if let n = f["hostname"] { settings.hostname = try string(n, "\(path).hostname") }
        if let n = f["enterprise_id"] {
            settings.enterpriseID = try integer(n, "\(path).enterprise_id", 1...Int(Int32.max))
        }
        if let n = f["bom"] { settings.bom = try bool(n, "\(path).bom") }
        if let n = f["timeout"] { settings.timeout = try duration(n, "\(path).timeout", .seconds(1)...(.seconds(600))) }
        if let n = f["tls"] {
            let files = try tls(n, "\(path).tls")
            (settings.caFile, settings.certFile) = (files.caFile, files.certFile)
            (settings.keyFile, settings.serverName) = (files.keyFile, files.serverName)
        }
        if let n = f["window"] {
            guard case .relp = settings.transport else {
                throw invalid(n, "\(path).window", "applies to relp:// and relp+tls:// only")
            }
            settings.window = try integer(n, "\(path).window", 1...65_536)
        }
        if case .relp = settings.transport, let n = f["framing"] {
            throw invalid(n, "\(path).framing", "does not apply to RELP, which frames each message itself")
        }
        return settings
    }

    /// A sink's `tls:`: `ca_file`, `cert_file` with `key_file`, `server_name`.
    func tls(_ node: ConfigNode, _ path: String) throws(ConfigurationError) -> Configuration.TLSFiles {
        let f = try fields(node, path, allowed: ["ca_file", "cert_file", "key_file", "server_name"])
        func text(_ key: String) throws(ConfigurationError) -> String? {
            try f[key].flatMap { node throws(ConfigurationError) in try string(node, "\(path).\(key)") }
        }
        var files = Configuration.TLSFiles()
        files.caFile = try text("ca_file")
        files.certFile = try text("cert_file")
        files.keyFile = try text("key_file")
        files.serverName = try text("server_name")
        guard (files.certFile == nil) == (files.keyFile == nil) else {
            throw invalid(node, path, "cert_file and key_file go together (mutual TLS needs both)")
        }
        return files
    }

    /// A `type: splunk_hec` sink.
    func splunkHEC(_ node: ConfigNode, _ path: String) throws(ConfigurationError) -> Configuration.SplunkHECSettings {
        let f = try fields(node, path, allowed: Self.sinkKeys(.splunkHEC(Configuration.SplunkHECSettings())))
        var settings = Configuration.SplunkHECSettings()
        settings.http = try httpSink(f, node, path, example: "https://splunk.example.com:8088", what: "the HEC token")
        if let n = f["token_file"] {
            guard let text = try string(n, "\(path).token_file") else {
                throw invalid(n, "\(path).token_file", "must not be null (leave it out to use the credential)")
            }
            settings.tokenFile = text
        }
        if let n = f["index"] { settings.index = try string(n, "\(path).index") }
        for (key, keyPath) in [("sourcetype", \Configuration.SplunkHECSettings.sourcetype), ("source", \.source)] {
            guard let n = f[key] else { continue }
            guard let text = try string(n, "\(path).\(key)") else {
                throw invalid(n, "\(path).\(key)", "must not be null")
            }
            settings[keyPath: keyPath] = text
        }
        if let n = f["host"] { settings.host = try string(n, "\(path).host") }
        if let n = f["acknowledgements"] { settings.acknowledgements = try bool(n, "\(path).acknowledgements") }
        if let n = f["ack_timeout"] {
            settings.ackTimeout = try duration(n, "\(path).ack_timeout", .seconds(1)...(.seconds(86_400)))
        }
        return settings
    }

    /// A `type: elasticsearch` sink.
    func elasticsearch(
        _ node: ConfigNode, _ path: String
    ) throws(ConfigurationError) -> Configuration.ElasticsearchSettings {
        var f = try fields(node, path, allowed: Self.sinkKeys(.elasticsearch(Configuration.ElasticsearchSettings())))
        let example = "https://elasticsearch.example.com:9200"
        let secret = "the Elasticsearch credentials"
        var settings = Configuration.ElasticsearchSettings()
        switch (f["url"], f["urls"]) {
        case (.some, .some(let n)): throw invalid(n, "\(path).urls", "give url or urls, not both")
        case (nil, .some(let n)):
            guard case .list(let items) = n.value, !items.isEmpty else {
                throw invalid(n, "\(path).urls", "expected a list of one or more URLs, e.g. [\(example)]")
            }
            for (index, item) in items.enumerated() {
                settings.urls.append(
                    try httpURL(item, "\(path).urls[\(index)]", example: example, carrying: secret))
            }
            f["url"] = items[0]
        default: break
        }
        f["urls"] = nil
        settings.http = try httpSink(f, node, path, example: example, what: secret)
        if settings.urls.isEmpty { settings.urls = [settings.http.url] }
        settings.http.url = settings.urls[0]
        if let n = f["index"] {
            guard let text = try string(n, "\(path).index") else {
                throw invalid(n, "\(path).index", "must not be null")
            }
            // Elasticsearch's rules for index and data stream names.
            let forbidden = Set(#"\/*?"<>| ,#:"#)
            guard text == text.lowercased(), !text.contains(where: forbidden.contains),
                !["-", "_", "+"].contains(text.first!), text != ".", text != "..", text.utf8.count <= 255
            else {
                throw invalid(
                    n, "\(path).index",
                    "'\(text)' is not an index name Elasticsearch takes (lowercase; none of \\ / * ? \" < > | , # : or spaces; not starting with - _ +)"
                )
            }
            settings.index = text
        }
        if let n = f["pipeline"] { settings.pipeline = try string(n, "\(path).pipeline") }
        if let n = f["api_key_file"] { settings.apiKeyFile = try string(n, "\(path).api_key_file") }
        if let n = f["username"] { settings.username = try string(n, "\(path).username") }
        if let n = f["password_file"] { settings.passwordFile = try string(n, "\(path).password_file") }
        if settings.username != nil, let n = f["api_key_file"] {
            throw invalid(n, "\(path).api_key_file", "give api_key_file or username with password_file, not both")
        }
        if settings.username == nil, let n = f["password_file"] {
            throw invalid(n, "\(path).password_file", "goes with username")
        }
        if let n = f["on_rejected"] {
            settings.onRejected = .init(rawValue: try choice(n, "\(path).on_rejected", ["hold", "dead_letter"]))!
        }
        return settings
    }

    /// The keys of `httpSinkKeys` and `url`: an http(s) base URL, plain http only to this
    /// machine, since `secret` goes in every request.
    func httpSink(
        _ f: [String: ConfigNode], _ node: ConfigNode, _ path: String, example: String, what secret: String
    ) throws(ConfigurationError) -> Configuration.HTTPSinkSettings {
        var settings = Configuration.HTTPSinkSettings()
        guard let n = f["url"] else { throw invalid(node, "\(path).url", "is required (e.g. \(example))") }
        settings.url = try httpURL(n, "\(path).url", example: example, carrying: secret)
        if let n = f["timeout"] {
            settings.timeout = try duration(n, "\(path).timeout", .seconds(1)...(.seconds(600)))
        }
        if let n = f["gzip"] { settings.gzip = try bool(n, "\(path).gzip") }
        if let n = f["max_request_bytes"] {
            settings.maxRequestBytes = try byteSize(n, "\(path).max_request_bytes", (64 << 10)...(1 << 30))
        }
        if let n = f["tls"] { settings.tls = try tls(n, "\(path).tls") }
        if let n = f["proxy"] {
            settings.proxy = try string(n, "\(path).proxy")
            if let proxy = settings.proxy,
                case .failure(let error) = ProxySettings.parse(proxy, origin: "\(path).proxy")
            {
                throw invalid(n, "\(path).proxy", error.reason)
            }
        }
        return settings
    }

    /// `unix:///path`, `udp://host:port`, `tcp://host:port`, `tls://host:port`, `relp://host:port`,
    /// `relp+tls://host:port`; IPv6 in brackets.
    func transport(
        _ text: String, _ node: ConfigNode, _ path: String
    ) throws(ConfigurationError) -> Configuration.SyslogSettings.Transport {
        guard let separator = text.range(of: "://") else {
            throw invalid(
                node, path,
                "'\(text)' is not a URL (expected unix:///path, udp://host:port, tcp://host:port, tls://host:port, "
                    + "relp://host:port or relp+tls://host:port)")
        }
        let scheme = text[..<separator.lowerBound].lowercased()
        let rest = String(text[separator.upperBound...])
        if scheme == "unix" {
            guard rest.hasPrefix("/") else {
                throw invalid(node, path, "'\(text)': a unix socket needs an absolute path (unix:///dev/log)")
            }
            return .unix(path: rest)
        }
        let schemes = ["unix", "udp", "tcp", "tls", "relp", "relp+tls"]
        guard schemes.dropFirst().contains(scheme) else {
            throw invalid(
                node, path,
                "unknown scheme '\(scheme)' (expected \(schemes.joined(separator: ", ")))\(Self.suggestion(for: scheme, among: schemes))"
            )
        }
        guard let (host, port) = Self.hostAndPort(rest.hasSuffix("/") ? String(rest.dropLast()) : rest) else {
            throw invalid(
                node, path, "'\(text)' needs a host and a port from 1 to 65535 (e.g. \(scheme)://siem.example.com:6514)"
            )
        }
        switch scheme {
        case "udp": return .udp(host: host, port: port)
        case "tcp": return .tcp(host: host, port: port)
        case "relp": return .relp(host: host, port: port, tls: false)
        case "relp+tls": return .relp(host: host, port: port, tls: true)
        default: return .tls(host: host, port: port)
        }
    }

    /// `host:port`, `[v6]:port`: the one parser of socket addresses in the configuration.
    static func hostAndPort(_ text: String) -> (host: String, port: Int)? {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(after: close)...].drop { $0 == ":" }
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            return nil
        }
        guard !host.isEmpty, !host.contains("/"), let port = Int(portText), (1...65535).contains(port) else {
            return nil
        }
        return (String(host), port)
    }

    // MARK: values

    func invalid(_ node: ConfigNode, _ path: String, _ message: String) -> ConfigurationError {
        .invalid(origin: node.origin, path: path, message: message)
    }

    func fields(_ node: ConfigNode, _ path: String, allowed: [String]) throws(ConfigurationError) -> [String:
        ConfigNode]
    {
        switch node.value {
        case .null: return [:]
        case .map(let pairs):
            var out: [String: ConfigNode] = [:]
            for (key, value) in pairs {
                let keyPath = path.isEmpty ? key : "\(path).\(key)"
                guard allowed.contains(key) else {
                    let hint = Self.suggestion(for: key, among: allowed)
                    throw invalid(
                        value, keyPath,
                        "unknown key\(hint) (\(path.isEmpty ? "top level" : path) takes: \(allowed.joined(separator: ", ")))"
                    )
                }
                out[key] = value
            }
            return out
        default:
            throw invalid(
                node, path.isEmpty ? "top level" : path, "expected a mapping of \(allowed.joined(separator: ", "))")
        }
    }

    func scalar(_ node: ConfigNode, _ path: String, expected: String) throws(ConfigurationError) -> String {
        guard case .scalar(let text) = node.value else { throw invalid(node, path, "expected \(expected)") }
        return text
    }

    func string(_ node: ConfigNode, _ path: String) throws(ConfigurationError) -> String? {
        if case .null = node.value { return nil }
        let text = try scalar(node, path, expected: "a string")
        guard !text.isEmpty else { throw invalid(node, path, "must not be empty (use null for none)") }
        return text
    }

    func strings(_ node: ConfigNode, _ path: String) throws(ConfigurationError) -> [String] {
        if case .null = node.value { return [] }
        guard case .list(let items) = node.value else { throw invalid(node, path, "expected a list of strings") }
        var out: [String] = []
        for (index, item) in items.enumerated() {
            guard let text = try string(item, "\(path)[\(index)]") else {
                throw invalid(item, "\(path)[\(index)]", "expected a string")
            }
            out.append(text)
        }
        return out
    }

    func integer(_ node: ConfigNode, _ path: String, _ range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        let text = try scalar(node, path, expected: "a whole number from \(range.lowerBound) to \(range.upperBound)")
        guard let value = Int(text.replacingAll("_", with: "")), range.contains(value) else {
            throw invalid(node, path, "'\(text)' is not a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    func bool(_ node: ConfigNode, _ path: String) throws(ConfigurationError) -> Bool {
        let text = try scalar(node, path, expected: "true or false")
        switch text.lowercased() {
        case "true": return true
        case "false": return false
        default: throw invalid(node, path, "'\(text)' is not true or false")
        }
    }

    func duration(
        _ node: ConfigNode, _ path: String, _ range: ClosedRange<Duration>
    ) throws(ConfigurationError) -> Duration {
        let text = try scalar(node, path, expected: "a duration such as 30s, 10m, 1h")
        guard let value = TimeSpec.duration(text) else {
            throw invalid(node, path, "'\(text)' is not a duration (expected 30s, 10m, 1h, 500ms or plain seconds)")
        }
        guard range.contains(value) else {
            throw invalid(node, path, "'\(text)' is out of range (\(range.lowerBound) to \(range.upperBound))")
        }
        return value
    }

    func choice(_ node: ConfigNode, _ path: String, _ options: [String]) throws(ConfigurationError) -> String {
        let expected = options.joined(separator: ", ")
        let text = try scalar(node, path, expected: "one of \(expected)")
        guard options.contains(text) else {
            throw invalid(
                node, path, "'\(text)' is not one of \(expected)\(Self.suggestion(for: text, among: options))")
        }
        return text
    }

    /// A size in bytes: a whole number, or one with `KiB`, `MiB` or `GiB` (`32MiB`).
    func byteSize(_ node: ConfigNode, _ path: String, _ range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        let text = try scalar(node, path, expected: "a size such as 32MiB")
        let units: [(suffix: String, factor: Int)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("", 1)]
        let unit = units.first { text.hasSuffix($0.suffix) }!
        guard let number = Int(String(text.dropLast(unit.suffix.count)).trimmingSpaces), number >= 0,
            number <= Int.max / unit.factor
        else {
            throw invalid(node, path, "'\(text)' is not a size (expected bytes, or a number with KiB, MiB or GiB)")
        }
        let bytes = number * unit.factor
        guard range.contains(bytes) else {
            throw invalid(
                node, path, "'\(text)' is out of range (\(range.lowerBound >> 20)MiB to \(range.upperBound >> 20)MiB)")
        }
        return bytes
    }

    func baseURL(_ node: ConfigNode) throws(ConfigurationError) -> String {
        try httpURL(node, "api.base_url", example: "https://api.openai.com/v1", carrying: "the admin key")
    }

    /// An http(s) URL without a trailing slash; plain http only to this machine, since
    /// `secret` goes with every request to it.
    func httpURL(
        _ node: ConfigNode, _ path: String, example: String, carrying secret: String
    ) throws(ConfigurationError) -> String {
        guard let text = try string(node, path) else { throw invalid(node, path, "must not be null") }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty,
            ["http", "https"].contains(scheme), url.query == nil
        else {
            throw invalid(node, path, "'\(text)' is not an http(s) URL such as \(example)")
        }
        guard scheme == "https" || Self.isLoopback(host: host) else {
            throw invalid(
                node, path,
                "'\(text)' would send \(secret) in clear text; use https (plain http is allowed only to a loopback host)"
            )
        }
        return text.hasSuffix("/") ? String(text.dropLast()) : text
    }

    /// Whether `host` (as a URL gives it) is this machine for certain: an address in
    /// 127.0.0.0/8, `::1`, or exactly `localhost`. A name that merely starts with `127.`
    /// (`127.evil.example`) is not: it resolves wherever its owner likes.
    static func isLoopback(host: String) -> Bool {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if bare.lowercased() == "localhost" { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, bare, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, bare, &v6) == 1 else { return false }
        return withUnsafeBytes(of: &v6) { $0.elementsEqual([UInt8](repeating: 0, count: 15) + [1]) }
    }

    /// ` (did you mean 'interval'?)` when a known name is within two edits.
    static func suggestion(for word: String, among candidates: [String]) -> String {
        func distance(_ a: [Character], _ b: [Character]) -> Int {
            var row = Array(0...b.count)
            for i in 1...max(a.count, 1) where !a.isEmpty {
                var previous = row[0]
                row[0] = i
                for j in stride(from: 1, through: b.count, by: 1) {
                    let saved = row[j]
                    row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                    previous = saved
                }
            }
            return a.isEmpty ? b.count : row[b.count]
        }
        let scored = candidates.map { ($0, distance(Array(word.lowercased()), Array($0.lowercased()))) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= 2 else { return "" }
        return " (did you mean '\(best.0)'?)"
    }
}
