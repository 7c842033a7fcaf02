extension Configuration {
    /// What every sink that posts over HTTP takes (`splunk_hec`; `elasticsearch` to come).
    public struct HTTPSinkSettings: Sendable, Equatable {
        /// The base URL, without a trailing slash: https, or http to a loopback host only (a
        /// token must not cross a network in clear).
        public var url = ""
        /// Bounds connecting and each request with its response: a server that stops
        /// answering fails the batch instead of holding the cycle.
        public var timeout: Duration = .seconds(30)
        /// Request bodies gzip-compressed (`Content-Encoding: gzip`).
        public var gzip = true
        /// A batch is cut into requests of at most this many bytes before compression (one
        /// event at least).
        public var maxRequestBytes = 5 << 20
        public var tls = TLSFiles()
        /// `http://[user:password@]host:port`; null: none. The API's proxy settings (and
        /// `HTTPS_PROXY`) do not apply: a SIEM is usually inside the network.
        public var proxy: String?

        public init(url: String = "") { self.url = url }
    }

    /// `tls:` of a sink: trust roots, a client certificate, the name to verify.
    public struct TLSFiles: Sendable, Equatable {
        public var caFile: String?
        public var certFile: String?
        public var keyFile: String?
        public var serverName: String?
        public init() {}
    }

    /// A `type: splunk_hec` sink.
    public struct SplunkHECSettings: Sendable, Equatable {
        public var http = HTTPSinkSettings()
        /// The token's file; nil: the systemd credential `splunk-hec-token`, else `$SPLUNK_HEC_TOKEN`.
        public var tokenFile: String?
        public var index: String?
        public var sourcetype = "openai:audit"
        public var source = "openai-auditd"
        /// nil: this machine's name.
        public var host: String?
        /// Indexer acknowledgement: the position moves only once Splunk says it indexed the batch.
        public var acknowledgements = true
        /// How long an acknowledgement is waited for before its events are sent again.
        public var ackTimeout: Duration = .seconds(300)

        public init(url: String = "") { http.url = url }
    }

    /// A `type: elasticsearch` sink (Elasticsearch 7 and 8, OpenSearch).
    public struct ElasticsearchSettings: Sendable, Equatable {
        /// `http.url` is the first of `urls`.
        public var http = HTTPSinkSettings()
        /// `url`, or each of `urls`, tried in turn.
        public var urls: [String] = []
        /// An index, an alias or a data stream (`logs-openai.audit-default`).
        public var index = "openai-audit"
        /// An ingest pipeline every document goes through.
        public var pipeline: String?
        /// `Authorization: ApiKey`, the encoded key; nil: the credential, the variable, or none.
        public var apiKeyFile: String?
        /// Basic authentication with the password from `passwordFile` (or its credential).
        public var username: String?
        public var passwordFile: String?
        public var onRejected = OnRejected.hold

        public enum OnRejected: String, Sendable, CaseIterable {
            /// The sink fails naming the event, and its position holds until it is fixed.
            case hold
            /// The event goes to the dead-letter file beside the state; the sink goes on.
            case deadLetter = "dead_letter"
        }

        public init(urls: [String] = []) {
            self.urls = urls
            http.url = urls.first ?? ""
        }
    }
}
