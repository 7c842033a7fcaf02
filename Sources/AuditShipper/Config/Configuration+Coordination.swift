extension Configuration {
    /// `coordination:`: the members of one group (hosts reading the same organization) hold a
    /// lease in PostgreSQL, and only its holder delivers to the shared sinks, whose positions
    /// live there too (`PostgresCoordination`). Absent, the daemon works alone.
    public struct CoordinationSettings: Sendable, Equatable {
        /// `sslmode=` of the URL: `verify-full` (the default) checks the server's certificate
        /// and name, `require` encrypts without checking who answers, `disable` (to a loopback
        /// host only) sends the password and the positions in clear.
        public enum SSLMode: String, Sendable, CaseIterable {
            case verifyFull = "verify-full"
            case require
            case disable
        }

        /// As written, for messages (it holds no password: `url` refuses one).
        public var url = ""
        public var host = ""
        public var port = 5432
        public var user = ""
        public var database = ""
        public var sslMode = SSLMode.verifyFull
        /// `sslrootcert=` of the URL: trust roots instead of the system's.
        public var caFile: String?
        /// The password's file; nil: the systemd credential `postgres-password`, else `$PGPASSWORD`.
        public var passwordFile: String?
        /// nil: derived from the state's source (`StateSource.group`), so that members reading
        /// the same organization with the same filters find one another.
        public var group: String?
        /// A holder that has not renewed for this long is replaced.
        public var lease: Duration = .seconds(30)
        /// Where the daemon's tables (`openai_auditd_*`) are.
        public var schema = "public"

        public init() {}
    }
}

extension Configuration.SinkEntry {
    /// Whether only the lease holder delivers to it (its position in PostgreSQL): a sink that
    /// delivers to one place for the whole group (`syslog`, `splunk_hec`, `elasticsearch`)
    /// unless `shared:` says otherwise; one of the host itself (`journald`, `file`, `stdout`)
    /// is local, so every member's journal and files hold the whole trail.
    public var isShared: Bool {
        if let shared { return shared }
        switch settings {
        case .syslog, .splunkHEC, .elasticsearch: return true
        case .stdout, .journald, .file: return false
        }
    }
}
