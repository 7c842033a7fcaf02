import AuditShipper
import Foundation
import Testing

@Suite struct ConfigurationTests {
    /// The repository: the nearest folder above this file that holds Package.swift.
    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        repeat {
            url.deleteLastPathComponent()
        } while url.path != "/"
            && !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path)
        return url
    }()

    func parse(_ yaml: String, environment: [String: String] = [:]) throws -> Configuration {
        try ConfigurationLoader.parse(yaml: yaml, file: "config.yaml", environment: environment)
    }

    @Test func anEmptyFileGivesTheDefaults() throws {
        let config = try parse("")
        #expect(config == Configuration())
        #expect(config.api.baseURL == "https://api.openai.com/v1")
        #expect(config.api.requestTimeout == .seconds(30))
        #expect(config.api.pageSize == 100)
        #expect(config.poll.interval == .seconds(60))
        #expect(config.poll.lookback == 600)
        #expect(config.poll.startAt == .now)
        #expect(config.poll.maxWindowEvents == 10_000)
        #expect(config.poll.maxWindowBytes == 256 << 20)
        #expect(config.sinks.map(\.settings) == [.stdout(format: .json)])
        #expect(config.logLevel == .info)
        #expect(config.logFormat == .auto)
    }

    @Test func coordinationIsReadAndSinksAreSharedByTheirType() throws {
        let config = try parse(
            """
            coordination:
              type: postgres
              url: postgresql://auditd@[::1]:6432/audit?sslmode=disable&sslrootcert=/etc/ca.pem
              password_file: /run/pw
              group: prod
              lease: 45s
              schema: auditd
            sinks:
              - type: journald
              - type: syslog
                url: tcp://siem:514
              - type: file
                path: /var/log/a.json
                shared: true
              - type: syslog
                url: udp://siem:514
                shared: false
            """)
        let coordination = try #require(config.coordination)
        #expect(coordination.host == "::1")
        #expect(coordination.port == 6432)
        #expect(coordination.user == "auditd")
        #expect(coordination.database == "audit")
        #expect(coordination.sslMode == .disable)
        #expect(coordination.caFile == "/etc/ca.pem")
        #expect(coordination.passwordFile == "/run/pw")
        #expect(coordination.group == "prod")
        #expect(coordination.lease == .seconds(45))
        #expect(coordination.schema == "auditd")
        #expect(config.sinks.map(\.isShared) == [false, true, true, false])
        #expect(try parse("").coordination == nil)
        let plain = try #require(try parse("coordination:\n  type: postgres\n  url: postgres://a@db/c").coordination)
        #expect(plain.sslMode == .verifyFull)
        #expect(plain.port == 5432)
        #expect(plain.lease == .seconds(30))
        #expect(plain.schema == "public")
    }

    @Test func everyKeyIsRead() throws {
        let config = try parse(
            """
            api:
              base_url: https://proxy.example.com/v1/
              admin_key_file: /etc/openai-auditd/admin-key
              organization: org-abc
              request_timeout: 45s
              page_size: 50
              include_tenant_events: true
              max_response_bytes: 8MiB
              proxy: http://auditor:pass@proxy.corp:3128
              tls: {ca_file: /etc/openai-auditd/corp-ca.pem}
              filters:
                event_types: [api_key.created, login.failed]
                project_ids: [proj_1]
                actor_ids: [user-1]
                actor_emails: [alice@example.com]
                resource_ids: [key_1]
            poll:
              interval: 2m
              lookback: 1h
              start_at: 2026-11-01T00:00:00Z
              max_window_events: 5000
              max_window_bytes: 64MiB
            state:
              path: /var/tmp/state.json
            sinks:
              - type: stdout
                format: cef
              - type: journald
                identifier: audit
            metrics:
              listen: null
            log:
              level: debug
              format: json
            """)
        #expect(config.api.baseURL == "https://proxy.example.com/v1")
        #expect(config.api.adminKeyFile == "/etc/openai-auditd/admin-key")
        #expect(config.api.organization == "org-abc")
        #expect(config.api.requestTimeout == .seconds(45))
        #expect(config.api.pageSize == 50)
        #expect(config.api.includeTenantEvents == .on)
        #expect(config.api.maxResponseBytes == 8 << 20)
        #expect(config.api.proxy == "http://auditor:pass@proxy.corp:3128")
        #expect(config.api.caFile == "/etc/openai-auditd/corp-ca.pem")
        #expect(
            config.api.filters
                == AuditLogFilters(
                    eventTypes: ["api_key.created", "login.failed"], projectIDs: ["proj_1"], actorIDs: ["user-1"],
                    actorEmails: ["alice@example.com"], resourceIDs: ["key_1"]))
        #expect(config.poll.interval == .seconds(120))
        #expect(config.poll.lookback == 3600)
        #expect(config.poll.startAt == .time("2026-11-01T00:00:00Z"))
        #expect(config.startTime(now: 0) == 1_793_491_200)
        #expect(config.poll.maxWindowEvents == 5000)
        #expect(config.poll.maxWindowBytes == 64 << 20)
        #expect(config.cycleSettings.maxWindowBytes == 64 << 20)
        #expect(config.statePath == "/var/tmp/state.json")
        #expect(config.logLevel == .debug)
        #expect(config.logFormat == .json)
        #expect(config.sinks.map(\.settings) == [.stdout(format: .cef), .journald(identifier: "audit")])
    }

    @Test func everySyslogKeyIsRead() throws {
        let config = try parse(
            """
            sinks:
              - type: syslog
                url: tls://[2001:db8::1]:6514
                protocol: rfc3164
                payload: leef
                framing: newline
                facility: auth
                hostname: web-1
                enterprise_id: 12345
                bom: true
                tls: {ca_file: /ca.pem, cert_file: /c.pem, key_file: /c.key, server_name: siem.example.com}
              - type: syslog
              - type: syslog
                url: udp://siem.example.com:514
            """)
        guard case .syslog(let first) = config.sinks[0].settings, case .syslog(let second) = config.sinks[1].settings,
            case .syslog(let third) = config.sinks[2].settings
        else { throw HarnessFailure("not three syslog sinks") }
        #expect(first.transport == .tls(host: "2001:db8::1", port: 6514))
        #expect(first.lineProtocol == .rfc3164 && first.payload == .leef && first.framing == .newline)
        #expect(first.facility == 4 && first.hostname == "web-1" && first.enterpriseID == 12345 && first.bom)
        #expect(first.caFile == "/ca.pem" && first.certFile == "/c.pem" && first.keyFile == "/c.key")
        #expect(first.serverName == "siem.example.com")
        #expect(second == Configuration.SyslogSettings())
        #expect(
            second.transport == .unix(path: "/dev/log") && second.facility == 16 && second.framing == .octetCounting)
        #expect(third.transport == .udp(host: "siem.example.com", port: 514))
    }

    @Test func everySplunkHECKeyIsRead() throws {
        let config = try parse(
            """
            sinks:
              - type: splunk_hec
                url: https://splunk.example.com:8088/
                token_file: /etc/openai-auditd/hec-token
                index: openai
                sourcetype: openai:audit:prod
                source: auditd-1
                host: web-1
                acknowledgements: false
                ack_timeout: 10m
                timeout: 1m
                gzip: false
                max_request_bytes: 1MiB
                proxy: http://proxy.example.com:3128
                tls: {ca_file: /ca.pem, cert_file: /c.pem, key_file: /c.key, server_name: splunk.internal}
              - type: splunk_hec
                url: http://127.0.0.1:8088
            """)
        guard case .splunkHEC(let first) = config.sinks[0].settings,
            case .splunkHEC(let second) = config.sinks[1].settings
        else { throw HarnessFailure("not two HEC sinks") }
        #expect(first.http.url == "https://splunk.example.com:8088")
        #expect(first.tokenFile == "/etc/openai-auditd/hec-token" && first.index == "openai")
        #expect(first.sourcetype == "openai:audit:prod" && first.source == "auditd-1" && first.host == "web-1")
        #expect(!first.acknowledgements && first.ackTimeout == .seconds(600))
        #expect(first.http.timeout == .seconds(60) && !first.http.gzip && first.http.maxRequestBytes == 1 << 20)
        #expect(first.http.proxy == "http://proxy.example.com:3128")
        #expect(first.http.tls.caFile == "/ca.pem" && first.http.tls.certFile == "/c.pem")
        #expect(first.http.tls.keyFile == "/c.key" && first.http.tls.serverName == "splunk.internal")
        var defaults = Configuration.SplunkHECSettings(url: "http://127.0.0.1:8088")
        #expect(second == defaults)
        #expect(second.acknowledgements && second.ackTimeout == .seconds(300) && second.sourcetype == "openai:audit")
        #expect(second.source == "openai-auditd" && second.http.gzip && second.http.maxRequestBytes == 5 << 20)
        #expect(second.http.timeout == .seconds(30) && second.http.proxy == nil && second.index == nil)
        #expect(config.sinks[0].name == "splunk_hec https://splunk.example.com:8088")
        defaults.http.url = "https://elsewhere"
        #expect(second != defaults)
    }

    @Test func everyElasticsearchKeyIsRead() throws {
        let config = try parse(
            """
            sinks:
              - type: elasticsearch
                urls: [https://es-1.example.com:9200/, https://es-2.example.com:9200]
                index: logs-openai.audit-default
                pipeline: openai-ecs
                username: auditd
                password_file: /etc/openai-auditd/es-password
                on_rejected: dead_letter
                max_request_bytes: 2MiB
              - type: elasticsearch
                url: http://localhost:9200
                api_key_file: /etc/openai-auditd/es-key
            """)
        guard case .elasticsearch(let first) = config.sinks[0].settings,
            case .elasticsearch(let second) = config.sinks[1].settings
        else { throw HarnessFailure("not two Elasticsearch sinks") }
        #expect(first.urls == ["https://es-1.example.com:9200", "https://es-2.example.com:9200"])
        #expect(first.http.url == "https://es-1.example.com:9200" && first.http.maxRequestBytes == 2 << 20)
        #expect(first.index == "logs-openai.audit-default" && first.pipeline == "openai-ecs")
        #expect(first.username == "auditd" && first.passwordFile == "/etc/openai-auditd/es-password")
        #expect(first.onRejected == .deadLetter && first.apiKeyFile == nil)
        #expect(
            second.urls == ["http://localhost:9200"] && second.index == "openai-audit" && second.onRejected == .hold)
        #expect(second.apiKeyFile == "/etc/openai-auditd/es-key" && second.http.gzip)
        #expect(config.sinks[0].name == "elasticsearch https://es-1.example.com:9200")
    }

    @Test func relpURLsAndTheirWindow() throws {
        let config = try parse(
            """
            sinks:
              - type: syslog
                url: relp://siem.example.com:2514
                window: 32
              - type: syslog
                url: RELP+TLS://[2001:db8::1]:2515
                tls: {ca_file: /ca.pem}
            """)
        guard case .syslog(let plain) = config.sinks[0].settings, case .syslog(let secure) = config.sinks[1].settings
        else { throw HarnessFailure("not two syslog sinks") }
        #expect(plain.transport == .relp(host: "siem.example.com", port: 2514, tls: false) && plain.window == 32)
        #expect(secure.transport == .relp(host: "2001:db8::1", port: 2515, tls: true) && secure.window == 128)
        #expect(config.sinks[0].name == "syslog relp://siem.example.com:2514")
    }

    @Test func everyFileKeyIsRead() throws {
        let config = try parse(
            """
            sinks:
              - type: file
                path: /srv/audit/openai.log
                format: cef
                mode: 0600
                group: "0"
                fsync: false
              - type: file
                path: /srv/audit/openai.json
                mode: '644'
                group: root
              - type: file
            """)
        guard case .file(let first) = config.sinks[0].settings, case .file(let second) = config.sinks[1].settings,
            case .file(let third) = config.sinks[2].settings
        else { throw HarnessFailure("not three file sinks") }
        #expect(first.path == "/srv/audit/openai.log" && first.format == .cef && first.mode == 0o600 && !first.fsync)
        #expect(first.group == .init(name: "0", id: 0))
        #expect(second.mode == 0o644 && second.group == .init(name: "root", id: 0) && second.format == .json)
        #expect(third == Configuration.FileSettings() && third.path == "/var/log/openai-auditd/audit.json")
        #expect(third.mode == 0o640 && third.fsync && third.group == nil)
        #expect(
            config.sinks.map(\.name) == [
                "file /srv/audit/openai.log", "file /srv/audit/openai.json", "file /var/log/openai-auditd/audit.json",
            ])
    }

    @Test func aReloadMayChangeEverythingButTheSourceAndTheStatePath() throws {
        let running = try parse("api:\n  organization: org-a\nstate:\n  path: /var/lib/a.json")
        let tuned = try parse(
            """
            api:
              organization: org-a
              page_size: 50
            poll:
              interval: 5m
            state:
              path: /var/lib/a.json
            sinks:
              - type: journald
            log:
              level: debug
            """)
        #expect(tuned.reloadRefusal(replacing: running, environment: [:]) == nil)
        #expect(tuned.changedKeys(from: running) == ["api.page_size", "poll.interval", "sinks", "log.level"])
        #expect(running.changedKeys(from: running).isEmpty)

        let moved = try parse("api:\n  organization: org-b\n  filters:\n    event_types: [login.failed]")
        let refusal = try #require(moved.reloadRefusal(replacing: running, environment: [:]))
        #expect(refusal.hasPrefix("api.organization, api.filters, state.path cannot change on reload"))
        #expect(refusal.contains("restart the daemon to apply these changes"))
        // The same file named two ways is no change: the resolved path counts.
        let viaDirectory = try parse("api:\n  organization: org-a")
        let explicit = try parse("api:\n  organization: org-a\nstate:\n  path: /run/s/state.json")
        #expect(explicit.reloadRefusal(replacing: viaDirectory, environment: ["STATE_DIRECTORY": "/run/s"]) == nil)
        // Filters are sets, for the state and for a reload alike: another order is no change.
        let filtered = try parse("api:\n  filters:\n    event_types: [login.failed, api_key.created]")
        let reordered = try parse(
            "api:\n  filters:\n    event_types: [api_key.created, login.failed, api_key.created]")
        #expect(reordered.stateSource == filtered.stateSource)
        #expect(reordered.reloadRefusal(replacing: filtered, environment: [:]) == nil)
        #expect(reordered.changedKeys(from: filtered).isEmpty)
    }

    @Test func sinksHaveANameAndAStartForTheirPosition() throws {
        let config = try parse(
            """
            sinks:
              - type: journald
              - type: syslog
                url: tcp://siem:514
              - type: syslog
                name: siem-tls
                start_at: beginning
                url: tls://siem:6514
              - type: stdout
                start_at: -7d
            """)
        #expect(config.sinks.map(\.name) == ["journald", "syslog tcp://siem:514", "siem-tls", "stdout"])
        #expect(config.sinks.map(\.startAt) == [nil, nil, .beginning, .time("-7d")])
        #expect(config.sinkStarts(now: 1_000_000) == ["siem-tls": 0, "stdout": 1_000_000 - 7 * 86_400])
        // Only a default name carries a url or path, and so may change with it.
        #expect(config.defaultNamedKinds == ["syslog tcp://siem:514": "syslog "])
    }

    @Test func theMetricsEndpointTakesHostAndPort() throws {
        #expect(try parse("metrics:\n  listen: 127.0.0.1:9464").metricsListen?.description == "127.0.0.1:9464")
        let v6 = try parse("metrics:\n  listen: '[::1]:9464'").metricsListen
        #expect(v6?.host == "::1" && v6?.port == 9464 && v6?.description == "[::1]:9464")
        #expect(try parse("").metricsListen == nil)
    }

    /// Plain http only to this machine for certain: the key must not cross a network in clear.
    @Test(arguments: [
        "http://localhost:8080/v1", "http://LOCALHOST/v1", "http://127.0.0.1:8080/v1", "http://127.255.0.9/v1",
        "http://[::1]:8080/v1", "https://api.example.com/v1",
    ])
    func plainHTTPIsAllowedOnlyToLoopback(_ url: String) throws {
        #expect(try parse("api:\n  base_url: '\(url)'").api.baseURL == url)
    }

    @Test func theExampleConfigurationLoads() throws {
        let config = try ConfigurationLoader.load(
            file: Self.root.appendingPathComponent("config/config.example.yaml").path, environment: [:])
        var expected = Configuration()
        expected.sinks = [Configuration.SinkEntry(.journald(identifier: "openai-audit"))]
        expected.metricsListen = Configuration.ListenAddress(host: "127.0.0.1", port: 9786)
        #expect(config == expected)
    }

    @Test func theDemoConfigurationLoads() throws {
        let config = try ConfigurationLoader.load(
            file: Self.root.appendingPathComponent("config/demo.yaml").path, environment: [:])
        #expect(config.api.includeTenantEvents != .off)
    }

    @Test(arguments: [
        ("poll:\n  intervall: 30s", "config.yaml:2: poll.intervall: unknown key (did you mean 'interval'?)"),
        ("apii: {}", "apii: unknown key (did you mean 'api'?)"),
        ("poll:\n  interval: ten", "poll.interval: 'ten' is not a duration (expected 30s, 10m, 1h"),
        ("poll:\n  interval: 0s", "poll.interval: '0s' is out of range"),
        ("poll:\n  lookback: 1.5s", "poll.lookback: must be whole seconds"),
        ("poll:\n  start_at: yesterday", "poll.start_at: 'yesterday' is not a time"),
        ("poll:\n  start_at: null", "poll.start_at: must not be null"),
        ("poll:\n  max_window_events: 10", "poll.max_window_events: '10' is not a whole number from 100 to 10000000"),
        ("poll:\n  max_window_bytes: 512KiB", "poll.max_window_bytes: '512KiB' is out of range (1MiB to 65536MiB)"),
        ("poll:\n  max_window_bytes: lots", "poll.max_window_bytes: 'lots' is not a size"),
        ("api:\n  page_size: 101", "api.page_size: '101' is not a whole number from 1 to 100"),
        ("api:\n  page_size: many", "api.page_size: 'many' is not a whole number"),
        ("api:\n  include_tenant_events: maybe", "api.include_tenant_events: 'maybe' is not auto, true or false"),
        ("api:\n  base_url: ftp://x/v1", "api.base_url: 'ftp://x/v1' is not an http(s) URL"),
        ("api:\n  base_url: http://api.example.com/v1", "would send the admin key in clear text"),
        ("api:\n  base_url: http://127.evil.example/v1", "would send the admin key in clear text"),
        ("api:\n  base_url: http://127.0.0.1.nip.io/v1", "would send the admin key in clear text"),
        ("api:\n  base_url: http://localhost.evil.example/v1", "would send the admin key in clear text"),
        ("api:\n  base_url: 'http://[::2]/v1'", "would send the admin key in clear text"),
        ("api:\n  base_url: http://128.0.0.1/v1", "would send the admin key in clear text"),
        ("api:\n  request_timeout: 1h", "api.request_timeout: '1h' is out of range"),
        ("api:\n  max_response_bytes: 32MB", "api.max_response_bytes: '32MB' is not a size (expected bytes, or"),
        ("api:\n  max_response_bytes: 1000", "api.max_response_bytes: '1000' is out of range (1MiB to 1024MiB)"),
        ("api:\n  max_response_bytes: 2GiB", "api.max_response_bytes: '2GiB' is out of range"),
        ("api:\n  proxy: socks5://proxy:1080", "api.proxy: uses socks5://, which is not supported"),
        ("api:\n  tls: {cert_file: /x.pem}", "api.tls.cert_file: unknown key"),
        ("api:\n  filters:\n    event_types: login.failed", "api.filters.event_types: expected a list of strings"),
        ("api:\n  filters:\n    actor_ids: [[a]]", "api.filters.actor_ids[0]: expected a string"),
        ("api:\n  filters:\n    actors: []", "api.filters.actors: unknown key"),
        ("api:\n  organization: \"\"", "api.organization: must not be empty"),
        ("api: 5", "config.yaml:1: api: expected a mapping of base_url"),
        ("sinks: []", "sinks: expected a list of one or more sinks"),
        ("sinks:\n  - format: json", "sinks[0]: each sink is a mapping with a 'type'"),
        (
            "sinks:\n  - type: stdut",
            "sinks[0].type: 'stdut' is not one of stdout, journald, syslog, file, splunk_hec, elasticsearch (did you mean 'stdout'?)"
        ),
        ("sinks:\n  - type: stdout\n    colour: red", "sinks[0].colour: unknown key"),
        ("sinks:\n  - type: splunk_hec", "sinks[0].url: is required (e.g. https://splunk.example.com:8088)"),
        (
            "sinks:\n  - type: splunk_hec\n    url: http://splunk.example.com:8088",
            "sinks[0].url: 'http://splunk.example.com:8088' would send the HEC token in clear text"
        ),
        (
            "sinks:\n  - type: splunk_hec\n    url: splunk.example.com:8088",
            "sinks[0].url: 'splunk.example.com:8088' is not an http(s) URL"
        ),
        (
            "sinks:\n  - type: splunk_hec\n    url: https://x\n    ack_timeout: 0s",
            "sinks[0].ack_timeout: '0s' is out of range"
        ),
        (
            "sinks:\n  - type: splunk_hec\n    url: https://x\n    max_request_bytes: 1KiB",
            "sinks[0].max_request_bytes: '1KiB' is out of range"
        ),
        (
            "sinks:\n  - type: splunk_hec\n    url: https://x\n    proxy: socks5://p:1080",
            "sinks[0].proxy: uses socks5://, which is not supported"
        ),
        (
            "sinks:\n  - type: splunk_hec\n    url: https://x\n    tls: {cert_file: /c.pem}",
            "sinks[0].tls: cert_file and key_file go together"
        ),
        (
            "sinks:\n  - type: elasticsearch\n    url: https://x\n    urls: [https://y]",
            "sinks[0].urls: give url or urls, not both"
        ),
        ("sinks:\n  - type: elasticsearch\n    urls: []", "sinks[0].urls: expected a list of one or more URLs"),
        (
            "sinks:\n  - type: elasticsearch\n    urls: [https://x, http://es.example.com]",
            "sinks[0].urls[1]: 'http://es.example.com' would send the Elasticsearch credentials in clear text"
        ),
        (
            "sinks:\n  - type: elasticsearch\n    url: https://x\n    index: OpenAI",
            "sinks[0].index: 'OpenAI' is not an index name Elasticsearch takes"
        ),
        (
            "sinks:\n  - type: elasticsearch\n    url: https://x\n    index: _audit",
            "sinks[0].index: '_audit' is not an index name Elasticsearch takes"
        ),
        (
            "sinks:\n  - type: elasticsearch\n    url: https://x\n    password_file: /p",
            "sinks[0].password_file: goes with username"
        ),
        (
            "sinks:\n  - type: elasticsearch\n    url: https://x\n    username: u\n    api_key_file: /k",
            "sinks[0].api_key_file: give api_key_file or username with password_file, not both"
        ),
        (
            "sinks:\n  - type: elasticsearch\n    url: https://x\n    on_rejected: drop",
            "sinks[0].on_rejected: 'drop' is not one of hold, dead_letter"
        ),
        (
            "sinks:\n  - type: splunk_hec\n    url: https://x\n    tokenfile: /t",
            "sinks[0].tokenfile: unknown key (did you mean 'token_file'?)"
        ),
        ("sinks:\n  - type: stdout\n    format: xml", "sinks[0].format: 'xml' is not one of json, rfc5424, cef, leef"),
        (
            "sinks:\n  - type: journald\n    identifer: x",
            "sinks[0].identifer: unknown key (did you mean 'identifier'?)"
        ),
        ("sinks:\n  - type: journald\n    identifier: null", "sinks[0].identifier: must not be null"),
        (
            "sinks:\n  - type: syslog\n    url: tpc://x:514",
            "sinks[0].url: unknown scheme 'tpc' (expected unix, udp, tcp, tls, relp, relp+tls) (did you mean 'tcp'?)"
        ),
        (
            "sinks:\n  - type: syslog\n    url: tcp://siem:514\n    window: 64",
            "sinks[0].window: applies to relp:// and relp+tls:// only"
        ),
        (
            "sinks:\n  - type: syslog\n    url: relp://siem:2514\n    window: 0",
            "sinks[0].window: '0' is not a whole number"
        ),
        (
            "sinks:\n  - type: syslog\n    url: relp://siem:2514\n    framing: newline",
            "sinks[0].framing: does not apply to RELP"
        ),
        (
            "sinks:\n  - type: syslog\n    url: tcp://siem",
            "sinks[0].url: 'tcp://siem' needs a host and a port from 1 to 65535"
        ),
        ("sinks:\n  - type: syslog\n    url: unix://dev/log", "a unix socket needs an absolute path"),
        ("sinks:\n  - type: syslog\n    url: siem:514", "sinks[0].url: 'siem:514' is not a URL"),
        ("sinks:\n  - type: syslog\n    facility: local9", "sinks[0].facility: 'local9' is not one of kern"),
        ("sinks:\n  - type: syslog\n    framing: lf", "sinks[0].framing: 'lf' is not one of octet-counting, newline"),
        ("sinks:\n  - type: syslog\n    payload: xml", "sinks[0].payload: 'xml' is not one of json, cef, leef"),
        (
            "sinks:\n  - type: syslog\n    protocol: rfc3339",
            "sinks[0].protocol: 'rfc3339' is not one of rfc5424, rfc3164"
        ),
        ("sinks:\n  - type: syslog\n    tls: {cert_file: /a}", "sinks[0].tls: cert_file and key_file go together"),
        ("sinks:\n  - type: syslog\n    tls: {verify: false}", "sinks[0].tls.verify: unknown key"),
        (
            "sinks:\n  - type: journald\n  - type: stdout\n    name: journald",
            "sinks[1].name: 'journald' is also the name of sinks[0]; each sink needs its own name",
        ),
        (
            "sinks:\n  - type: syslog\n    url: tcp://a:1\n  - type: syslog\n    url: tcp://a:1",
            "sinks[1].name: 'syslog tcp://a:1' is also the name of sinks[0]",
        ),
        ("sinks:\n  - type: stdout\n    start_at: later", "sinks[0].start_at: 'later' is not a time"),
        ("sinks:\n  - type: file\n    path: audit.json", "sinks[0].path: 'audit.json' is not an absolute path"),
        (
            "sinks:\n  - type: file\n    path: /tmp",
            "sinks[0].path: '/tmp' is a directory; give the path of a file in it"
        ),
        ("sinks:\n  - type: file\n    path: /var/log/x/", "sinks[0].path: '/var/log/x/' is a directory"),
        ("sinks:\n  - type: file\n    path: null", "sinks[0].path: must not be null"),
        ("sinks:\n  - type: file\n    mode: rw-r-----", "sinks[0].mode: 'rw-r-----' is not an octal file mode"),
        ("sinks:\n  - type: file\n    mode: '0648'", "sinks[0].mode: '0648' is not an octal file mode"),
        ("sinks:\n  - type: file\n    mode: '0666'", "sinks[0].mode: '0666' lets every user write the audit trail"),
        ("sinks:\n  - type: file\n    group: no-such-group-here", "there is no group 'no-such-group-here'"),
        ("sinks:\n  - type: file\n    fsync: sometimes", "sinks[0].fsync: 'sometimes' is not true or false"),
        ("sinks:\n  - type: file\n    format: xml", "sinks[0].format: 'xml' is not one of json, rfc5424, cef, leef"),
        (
            "sinks:\n  - type: file\n    rotate: daily",
            "sinks[0].rotate: unknown key (sinks[0] takes: type, name, start_at, shared, min_level, path"
        ),
        ("sinks:\n  - type: stdout\n    name: \"a\\tb\"", "sinks[0].name: must not contain control characters"),
        (
            "sinks:\n  - type: stdout\n    min_level: severe",
            "sinks[0].min_level: 'severe' is not one of informational, low, medium, high, critical"
        ),
        ("detections:\n  enabled: sometimes", "detections.enabled: 'sometimes' is not true or false"),
        ("detections:\n  rule: [a.yml]", "detections.rule: unknown key"),
        ("sinks:\n  - type: syslog\n    enterprise_id: 0", "sinks[0].enterprise_id: '0' is not a whole number"),
        ("metrics:\n  listen: 9464", "metrics.listen: '9464' is not HOST:PORT (e.g. 127.0.0.1:9464"),
        ("metrics:\n  listen: localhost:99999", "metrics.listen: 'localhost:99999' is not HOST:PORT"),
        ("log:\n  level: loud", "log.level: 'loud' is not one of trace, debug, info, notice, warning, error, critical"),
        ("state:\n  path: [a]", "state.path: expected a string"),
        ("api:\n  base_url: [unclosed", "config.yaml: not valid YAML: line"),
        ("a: 1\na: 2", "config.yaml: not valid YAML"),
        (
            "- just\n- a list",
            "top level: expected a mapping of api, poll, state, sinks, coordination, metrics, detections, log"
        ),
        (
            "coordination:\n  type: postgres\n  url: postgres://auditd:hunter2@db.example.com/auditd",
            "coordination.url: holds a password; put it in coordination.password_file"
        ),
        (
            "coordination:\n  type: postgres\n  url: postgres://auditd@db.example.com/auditd?sslmode=disable",
            "coordination.url: sslmode=disable would send the password and the positions in clear"
        ),
        (
            "coordination:\n  type: postgres\n  url: postgres://db.example.com/auditd",
            "coordination.url: names no user"
        ),
        ("coordination:\n  type: etcd\n  url: postgres://a@b/c", "coordination.type: 'etcd' is not one of postgres"),
        ("coordination:\n  url: postgres://a@b/c", "coordination.type: is required"),
        (
            "coordination:\n  type: postgres\n  url: postgres://a@b/c\n  schema: Robert'); DROP TABLE x",
            "coordination.schema: 'Robert'); DROP TABLE x' is not a plain PostgreSQL name"
        ),
        (
            "coordination:\n  type: postgres\n  url: postgres://a@b/c\n  lease: 1s",
            "coordination.lease: '1s' is out of range"
        ),
        ("sinks:\n  - type: stdout\n    shared: maybe", "sinks[0].shared: 'maybe' is not true or false"),
        (
            "poll: &p\n  interval: 30s\nmetrics: *p",
            "config.yaml:1: YAML anchors and aliases (&p, *p) are not supported"
        ),
    ])
    func aBadValueIsNamedWithItsKeyPath(yaml: String, message: String) {
        #expect {
            try parse(yaml)
        } throws: { error in
            guard error is ConfigurationError else { return false }
            let text = "\(error)"
            if !text.contains(message) { Issue.record("got: \(text)") }
            return text.contains(message)
        }
    }

    /// Nine levels of nine aliases ("billion laughs"): refused at the first anchor, before a
    /// single alias is expanded. (Expanded, it took `check` 30 s and 2.5 GB.)
    @Test func anAliasBombIsRefusedBeforeItExpands() {
        var yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n"
        for level in 1...8 {
            let previous = (0..<9).map { _ in "*a\(level - 1)" }.joined(separator: ", ")
            yaml += "a\(level): &a\(level) [\(previous)]\n"
        }
        #expect {
            try parse(yaml + "api:\n  filters:\n    event_types: *a8\n")
        } throws: { error in
            "\(error)".contains("YAML anchors and aliases") && "\(error)".contains("are not supported")
        }
    }

    @Test func environmentVariablesOverrideSingleKeys() throws {
        let config = try parse(
            "poll:\n  interval: 60s\n",
            environment: [
                "OPENAI_AUDITD_POLL_INTERVAL": "15s", "OPENAI_AUDITD_API_PAGE_SIZE": "10",
                "OPENAI_AUDITD_API_FILTERS_EVENT_TYPES": "login.failed, api_key.created",
                "OPENAI_AUDITD_API_ORGANIZATION": "org-x", "OPENAI_AUDITD_STATE_PATH": "/tmp/s.json",
                "OPENAI_AUDITD_CONFIG": "/ignored/here.yaml", "UNRELATED": "x",
                "OPENAI_AUDITD_API_TLS_CA_FILE": "/etc/ca.pem", "OPENAI_AUDITD_API_PROXY": "http://proxy:3128",
            ])
        #expect(config.poll.interval == .seconds(15))
        #expect(config.api.pageSize == 10)
        #expect(config.api.filters.eventTypes == ["login.failed", "api_key.created"])
        #expect(config.api.organization == "org-x")
        #expect(config.statePath == "/tmp/s.json")
        #expect(config.api.caFile == "/etc/ca.pem" && config.api.proxy == "http://proxy:3128")
    }

    @Test func aBadEnvironmentValueNamesTheVariable() {
        #expect {
            try parse("", environment: ["OPENAI_AUDITD_POLL_LOOKBACK": "forever"])
        } throws: { error in
            "\(error)".hasPrefix("OPENAI_AUDITD_POLL_LOOKBACK: poll.lookback: 'forever' is not a duration")
        }
    }

    @Test func anUnknownEnvironmentVariableIsAnError() {
        #expect {
            try parse("", environment: ["OPENAI_AUDITD_POLL_INTERVALL": "1s"])
        } throws: { error in
            "\(error)".contains(
                "OPENAI_AUDITD_POLL_INTERVALL: names no configuration key (did you mean 'OPENAI_AUDITD_POLL_INTERVAL'?)"
            )
        }
    }

    @Test func aMissingFileIsNamed() {
        #expect {
            try ConfigurationLoader.load(file: "/nonexistent/config.yaml", environment: [:])
        } throws: { error in
            "\(error)" == "cannot read configuration /nonexistent/config.yaml: no such file"
        }
    }

    @Test func theConfigurationPathComesFromTheFlagThenTheEnvironment() {
        #expect(
            ConfigurationLoader.path(flag: "/a.yaml", environment: ["OPENAI_AUDITD_CONFIG": "/b.yaml"]) == "/a.yaml")
        #expect(ConfigurationLoader.path(flag: nil, environment: ["OPENAI_AUDITD_CONFIG": "/b.yaml"]) == "/b.yaml")
        #expect(ConfigurationLoader.path(flag: nil, environment: [:]) == "/etc/openai-auditd/config.yaml")
    }

    @Test func theStatePathFollowsSystemd() {
        let config = Configuration()
        #expect(config.resolvedStatePath(environment: [:]) == "/var/lib/openai-auditd/state.json")
        #expect(
            config.resolvedStatePath(environment: ["STATE_DIRECTORY": "/var/lib/openai-auditd-a:/x"])
                == "/var/lib/openai-auditd-a/state.json")
    }

    @Test(arguments: [
        ("30s", Duration.seconds(30)), ("10m", .seconds(600)), ("1h", .seconds(3600)), ("2d", .seconds(172_800)),
        ("45", .seconds(45)), ("500ms", .milliseconds(500)), ("1.5", .milliseconds(1500)),
    ])
    func durations(text: String, expected: Duration) {
        #expect(TimeSpec.duration(text) == expected)
    }

    @Test func times() {
        let now: Int64 = 1_800_000_000
        #expect(TimeSpec.time("2026-11-01T00:00:00Z", now: now) == 1_793_491_200)
        #expect(TimeSpec.time("2026-11-01T02:00:00+02:00", now: now) == 1_793_491_200)
        #expect(TimeSpec.time("2026-11-01T00:00:00.250Z", now: now) == 1_793_491_200)
        #expect(TimeSpec.time("2026-11-01", now: now) == 1_793_491_200)
        #expect(TimeSpec.time("1793491200", now: now) == 1_793_491_200)
        #expect(TimeSpec.time("-7d", now: now) == now - 7 * 86_400)
        #expect(TimeSpec.time("-30m", now: now) == now - 1800)
        #expect(TimeSpec.time("2026-13-01T00:00:00Z", now: now) == nil)
        #expect(TimeSpec.time("last tuesday", now: now) == nil)
        #expect(TimeSpec.format(1_793_491_200) == "2026-11-01T00:00:00Z")
    }
}

@Suite struct AdminKeyTests {
    @Test func theKeyFileComesFirstThenTheCredentialThenTheEnvironment() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try "sk-admin-from-file\n".write(toFile: directory.path + "/key", atomically: true, encoding: .utf8)
        try "sk-admin-from-credential".write(
            toFile: directory.path + "/openai-admin-key", atomically: true, encoding: .utf8)
        var config = Configuration()
        config.api.adminKeyFile = directory.path + "/key"
        let environment = ["CREDENTIALS_DIRECTORY": directory.path, "OPENAI_ADMIN_KEY": "sk-admin-from-env"]
        #expect(try AdminKeyLoader.load(configuration: config, environment: environment).value == "sk-admin-from-file")
        config.api.adminKeyFile = nil
        #expect(
            try AdminKeyLoader.load(configuration: config, environment: environment).value == "sk-admin-from-credential"
        )
        #expect(
            try AdminKeyLoader.load(configuration: config, environment: ["OPENAI_ADMIN_KEY": "sk-admin-from-env"]).value
                == "sk-admin-from-env")
    }

    @Test func noKeyAtAllSaysWhereToPutOne() {
        #expect {
            try AdminKeyLoader.load(configuration: Configuration(), environment: [:])
        } throws: { error in
            "\(error)".contains("no admin key: set api.admin_key_file")
        }
    }

    @Test func anEmptyOrUnreadableKeyFileIsNamedWithoutItsContent() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try "  \n".write(toFile: directory.path + "/empty", atomically: true, encoding: .utf8)
        try "sk-admin-has a space".write(toFile: directory.path + "/spaced", atomically: true, encoding: .utf8)
        var config = Configuration()
        for (file, reason) in [("empty", "it is empty"), ("spaced", "contains spaces"), ("missing", "no such file")] {
            config.api.adminKeyFile = directory.path + "/" + file
            #expect {
                try AdminKeyLoader.load(configuration: config, environment: [:])
            } throws: { error in
                "\(error)".contains(reason) && "\(error)".contains(file) && !"\(error)".contains("sk-admin")
            }
        }
    }

    /// A sink's token comes the way the admin key does: its file, the credential, the variable.
    @Test func aSinkSecretComesFromItsFileThenTheCredentialThenTheEnvironment() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try "from-file\n".write(toFile: directory.path + "/token", atomically: true, encoding: .utf8)
        try "from-credential".write(toFile: directory.path + "/splunk-hec-token", atomically: true, encoding: .utf8)
        let loader = SecretLoader(
            fileKey: "sinks[0].token_file", credential: "splunk-hec-token", variable: "SPLUNK_HEC_TOKEN",
            what: "HEC token")
        let environment = ["CREDENTIALS_DIRECTORY": directory.path, "SPLUNK_HEC_TOKEN": "from-env"]
        #expect(try loader.load(file: directory.path + "/token", environment: environment)?.value == "from-file")
        #expect(try loader.load(file: nil, environment: environment)?.value == "from-credential")
        #expect(try loader.load(file: nil, environment: ["SPLUNK_HEC_TOKEN": "from-env"])?.value == "from-env")
        #expect(try loader.load(file: nil, environment: [:]) == nil)
        #expect(loader.missing.contains("no HEC token: set sinks[0].token_file, or provide the systemd credential"))
        #expect {
            try loader.load(file: directory.path + "/none", environment: [:])
        } throws: { error in
            "\(error)"
                == "HEC token from sinks[0].token_file (\(directory.path)/none): cannot read \(directory.path)/none: no such file"
        }
    }

    @Test func theKeyNeverPrints() {
        let key = AdminKey("sk-admin-secret-value-123", origin: "test")
        #expect("\(key)" == "[redacted]")
        #expect(String(reflecting: key) == "[redacted]")
        #expect(key.redact("echo sk-admin-secret-value-123 back") == "echo [redacted] back")
    }
}

struct HarnessFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
