import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import Synchronization

/// A group's lease and its shared positions in PostgreSQL: the one `Coordination` in
/// production.
///
/// One row per group (`openai_auditd_groups`) holds the lease: its holder, a term that rises
/// at every change of holder, and when it expires, all by the database's clock. Taking it
/// (`acquire`) succeeds only once it expired; renewing it and every write of a shared
/// position (`record`) succeed only while `holder = me AND term = my term AND expires_at >
/// now()`, the renewal and the positions in one transaction whose row lock keeps anyone from
/// taking the lease until it commits. So a member that lost the lease (frozen, cut off,
/// replaced) cannot move a shared position, however late its write arrives.
///
/// This member's own view (`holds`) ends `lease` after its last successful renewal was
/// *sent*: before the database's expiry, which it measured from later, so the member stops
/// delivering before anyone else may start. Renewals run every third of the lease, from a
/// task of their own, and with every write of the positions. A standby asks for the lease
/// from a task of its own too (`watchForLease`, every second at most), so it takes over
/// within the lease and a second of the holder's end whatever its cycle is doing.
///
/// One connection, made when first needed and dropped at any failure; every statement is
/// bounded by `timeout` (a third of the lease, at most 10 s), after which the connection is
/// closed, so a database that stops answering cannot hold the cycle.
public actor PostgresCoordination: Coordination {
    public nonisolated let group: String
    /// This process, as the lease knows it: host, process id and a random part, so a member
    /// restarted on the same host is a new holder and waits for its predecessor's lease.
    public nonisolated let member: String
    let settings: Configuration.CoordinationSettings
    let password: AdminKey?
    let source: StateSource
    /// Where a new group's sinks start: the state's `start_at`.
    let startAt: Int64
    let logger: Logger
    let metrics: DaemonMetrics?
    let eventLoop: any EventLoop
    let timeout: Duration
    /// The tables' version this daemon writes; an older one is migrated forward.
    public static let schemaVersion = 1

    var connection: PostgresConnection?
    var connections = 0
    /// The schema and the group's row exist and the source matches (once per process).
    var ready = false
    /// The term this member holds, if any.
    var term: Int64?
    /// The shared positions were read in this term.
    var loaded = false
    var renewal: Task<Void, Never>?
    /// The standby's own requests for the lease, while it holds none.
    var watch: Task<Void, Never>?
    nonisolated let took = Mutex(false)
    /// What the last standby was, so a change is logged once.
    var lastStandby: String?
    nonisolated let validUntil = Mutex<ContinuousClock.Instant?>(nil)

    public init(
        settings: Configuration.CoordinationSettings, password: AdminKey?, source: StateSource, startAt: Int64,
        logger: Logger, metrics: DaemonMetrics? = nil,
        eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.any()
    ) {
        self.settings = settings
        self.password = password
        self.source = source
        self.startAt = startAt
        self.logger = logger
        self.metrics = metrics
        self.eventLoop = eventLoop
        self.group = settings.group ?? source.groupName
        self.member =
            "\(ProcessInfo.processInfo.hostName):\(getpid()):\(String(UInt32.random(in: .min ... .max), radix: 16))"
        self.timeout = min(settings.lease / 3, .seconds(10))
        metrics?.register(group: group)
    }

    /// The configuration's coordination, nil when it has none; the password found the one
    /// way secrets are (`SecretLoader`). No password at all is a choice (a peer or certificate
    /// login): the server says whether it wants one.
    public static func make(
        configuration: Configuration, environment: [String: String], logger: Logger, metrics: DaemonMetrics? = nil,
        eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.any()
    ) throws(ConfigurationError) -> PostgresCoordination? {
        guard let settings = configuration.coordination else { return nil }
        let loader = SecretLoader(
            fileKey: "coordination.password_file", credential: "postgres-password", variable: "PGPASSWORD",
            what: "PostgreSQL password", headerSafe: false)
        return PostgresCoordination(
            settings: settings, password: try loader.load(file: settings.passwordFile, environment: environment),
            source: configuration.stateSource, startAt: configuration.startTime(now: Daemon.now()), logger: logger,
            metrics: metrics, eventLoop: eventLoop)
    }

    public nonisolated var holds: Bool {
        validUntil.withLock { until in until.map { ContinuousClock.now < $0 } ?? false }
    }

    public nonisolated var tookLease: Bool { took.withLock { $0 } }

    /// `schema.table`, for statements (the schema is checked to be a plain name when read).
    nonisolated func table(_ name: String) -> String { "\(settings.schema).openai_auditd_\(name)" }

    // MARK: The lease

    public func lead() async -> Leadership {
        // Whatever comes of it, this call is the cycle's answer to a lease taken by `watch`:
        // a term it cannot begin now (the database gone again) is begun by the next one.
        took.withLock { $0 = false }
        do {
            try await prepare()
            if let held = term {
                let sent = ContinuousClock.now
                if try await renew(held) {
                    extend(from: sent)
                    if loaded { return .leads(term: held, positions: nil) }
                    let positions = try await readPositions()
                    loaded = true
                    // Taken by `watch` while this call waited: begun here all the same.
                    took.withLock { $0 = false }
                    return .leads(term: held, positions: positions)
                }
                lose("another member holds the lease now, or it expired")
            }
            let sent = ContinuousClock.now
            if let taken = try await acquire() {
                begin(taken, sent: sent)
                let positions = try await readPositions()
                loaded = true
                return .leads(term: taken, positions: positions)
            }
            let holder = try await holderInWords()
            return standby(holder, positions: (try? await readPositions()) ?? [:])
        } catch {
            return standby("\(error)", positions: [:])
        }
    }

    /// This member took the lease (sent at `sent`) in term `taken`: it renews it from now on.
    func begin(_ taken: Int64, sent: ContinuousClock.Instant) {
        term = taken
        loaded = false
        extend(from: sent)
        metrics?.coordinationLeader(group: group).set(1.0)
        metrics?.coordinationTerm(group: group).set(Double(taken))
        lastStandby = nil
        logger.notice(
            "this member holds the group's lease now and delivers to the shared sinks",
            metadata: ["coordination.group": "\(group)", "coordination.term": "\(taken)"])
        startRenewing()
    }

    /// While this member holds no lease, asks for it every second at most (quietly: `lead`
    /// says why it stands by), until it takes it or holds it again through `lead`.
    func watchForLease() {
        guard watch == nil else { return }
        let every = min(.seconds(1), settings.lease / 4)
        watch = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: every)
                guard let self, !Task.isCancelled else { return }
                if await self.askForLease() { return }
            }
        }
    }

    /// One request of `watch`; true when it is done (the lease is this member's).
    func askForLease() async -> Bool {
        guard term == nil else {
            watch = nil
            return true
        }
        // The tables, the rights and the group's source first, as `lead` checks them.
        guard (try? await prepare()) != nil else { return false }
        let sent = ContinuousClock.now
        guard let taken = try? await acquire() else { return false }
        begin(taken, sent: sent)
        took.withLock { $0 = true }
        watch = nil
        return true
    }

    /// Another member leads, or the database is not there; logged when it changes.
    func standby(_ reason: String, positions: [String: SinkPosition]) -> Leadership {
        if term == nil { watchForLease() }
        if reason != lastStandby {
            logger.info(
                "standing by: the shared sinks are delivered by the lease's holder",
                metadata: ["coordination.group": "\(group)", "coordination.reason": "\(reason)"])
            lastStandby = reason
        }
        return .standby(reason, positions: positions)
    }

    /// The lease is someone else's (or expired): nothing more goes to a shared sink from here.
    func lose(_ reason: String) {
        guard let lost = term else { return }
        term = nil
        loaded = false
        validUntil.withLock { $0 = nil }
        renewal?.cancel()
        renewal = nil
        metrics?.coordinationLeader(group: group).set(0.0)
        metrics?.coordinationRenewalFailures(group: group).increment()
        logger.error(
            "this member lost the group's lease: it stops delivering to the shared sinks and stands by",
            metadata: [
                "coordination.group": "\(group)", "coordination.term": "\(lost)", "coordination.reason": "\(reason)",
            ])
        watchForLease()
    }

    func extend(from sent: ContinuousClock.Instant) {
        validUntil.withLock { $0 = sent + settings.lease }
    }

    func startRenewing() {
        renewal?.cancel()
        let every = settings.lease / 3
        renewal = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: every)
                guard let self, !Task.isCancelled else { return }
                await self.renewOnce()
            }
        }
    }

    func renewOnce() async {
        guard let held = term else { return }
        let sent = ContinuousClock.now
        do {
            if try await renew(held) {
                extend(from: sent)
            } else {
                lose("another member holds the lease now, or it expired")
            }
        } catch {
            metrics?.coordinationRenewalFailures(group: group).increment()
            logger.warning(
                "cannot renew the group's lease; this member stops delivering to the shared sinks when it expires unless a renewal succeeds first",
                metadata: ["coordination.group": "\(group)", "error": "\(error)"])
        }
    }

    /// The fenced renewal: it changes the row (and locks it until the transaction ends) only
    /// while the lease is this member's term and has not expired by the database's clock.
    func renewal(of held: Int64) -> PostgresQuery {
        """
        UPDATE \(unescaped: table("groups")) SET renewed_at = now(),
            expires_at = now() + \(leaseMilliseconds) * interval '1 millisecond'
        WHERE group_name = \(group) AND holder = \(member) AND term = \(held) AND expires_at > now()
        RETURNING term
        """
    }

    func renew(_ held: Int64) async throws(CoordinationError) -> Bool {
        let renewal = renewal(of: held)
        let renewed = try await run("renewing the lease") { connection in
            try await connection.query(renewal, logger: Self.quiet).collect().count == 1
        }
        if renewed { metrics?.coordinationRenewals(group: group).increment() }
        return renewed
    }

    /// Takes the lease if it expired (or was never held): the new term, or nil.
    func acquire() async throws(CoordinationError) -> Int64? {
        let groups = table("groups")
        let me = member
        return try await run("taking the lease") { [group, leaseMilliseconds] connection in
            for try await taken in try await connection.query(
                """
                UPDATE \(unescaped: groups) SET holder = \(me), term = term + 1, acquired_at = now(),
                    renewed_at = now(), expires_at = now() + \(leaseMilliseconds) * interval '1 millisecond'
                WHERE group_name = \(group) AND expires_at <= now()
                RETURNING term
                """, logger: Self.quiet
            ).decode(Int64.self) {
                return taken
            }
            return nil
        }
    }

    var leaseMilliseconds: Int64 {
        settings.lease.components.seconds * 1000 + settings.lease.components.attoseconds / 1_000_000_000_000_000
    }

    func holderInWords() async throws(CoordinationError) -> String {
        let status = try await leaseRow()
        guard let holder = status.holder else { return "no member has held the lease yet" }
        return status.held
            ? "\(holder) holds the lease (term \(status.term))"
            : "the lease of \(holder) (term \(status.term)) expired and is about to be taken"
    }

    public func resign() async {
        renewal?.cancel()
        renewal = nil
        watch?.cancel()
        watch = nil
        if let held = term {
            let groups = table("groups")
            let me = member
            _ = try? await run("giving the lease up") { [group] connection in
                try await connection.query(
                    """
                    UPDATE \(unescaped: groups) SET expires_at = now()
                    WHERE group_name = \(group) AND holder = \(me) AND term = \(held)
                    """, logger: Self.quiet)
            }
            term = nil
            validUntil.withLock { $0 = nil }
            metrics?.coordinationLeader(group: group).set(0.0)
            logger.notice(
                "gave the group's lease up",
                metadata: ["coordination.group": "\(group)", "coordination.term": "\(held)"])
        }
        if let connection {
            self.connection = nil
            try? await connection.close()
        }
    }

    // MARK: The positions

    public func record(_ positions: [String: SinkPosition]) async -> Recording {
        guard let held = term else { return .fenced("this member does not hold the lease") }
        let table = table("positions")
        let encoded = positions.map { name, position in (name, Self.json(position)) }
        let sent = ContinuousClock.now
        do {
            let renewal = renewal(of: held)
            let fenced = try await run("writing the shared positions") { [group] connection in
                try await connection.withTransaction(logger: Self.quiet) { connection in
                    let renewed = try await connection.query(renewal, logger: Self.quiet).collect().count == 1
                    guard renewed else { return true }
                    for (name, json) in encoded {
                        try await connection.query(
                            """
                            INSERT INTO \(unescaped: table) (group_name, sink, position, term, updated_at)
                            VALUES (\(group), \(name), \(json)::jsonb, \(held), now())
                            ON CONFLICT (group_name, sink) DO UPDATE
                            SET position = excluded.position, term = excluded.term, updated_at = excluded.updated_at
                            """, logger: Self.quiet)
                    }
                    return false
                }
            }
            if fenced {
                lose("the lease was another member's at the write of the shared positions")
                return .fenced("another member holds the lease now, or it expired")
            }
            extend(from: sent)
            metrics?.coordinationRenewals(group: group).increment()
            return .recorded
        } catch {
            metrics?.coordinationRenewalFailures(group: group).increment()
            return .failed("\(error)")
        }
    }

    func readPositions() async throws(CoordinationError) -> [String: SinkPosition] {
        let table = table("positions")
        let rows = try await run("reading the shared positions") { [group] connection in
            var rows: [(String, String)] = []
            for try await row in try await connection.query(
                "SELECT sink, position::text FROM \(unescaped: table) WHERE group_name = \(group)", logger: Self.quiet
            ).decode((String, String).self) {
                rows.append(row)
            }
            return rows
        }
        var positions: [String: SinkPosition] = [:]
        for (name, json) in rows {
            do {
                positions[name] = try JSONDecoder().decode(SinkPosition.self, from: Data(json.utf8))
            } catch {
                throw .refused(
                    url: settings.url,
                    reason: "the shared position of sink '\(name)' in \(table) is not one this daemon wrote")
            }
        }
        return positions
    }

    /// The lease and the shared positions as the database has them.
    public func status() async throws(CoordinationError) -> GroupStatus {
        var status = try await leaseRow()
        status.positions = try await readPositions()
        return status
    }

    /// The lease as the database has it (no positions).
    func leaseRow() async throws(CoordinationError) -> GroupStatus {
        try await prepare()
        let groups = table("groups")
        let row = try await run("reading the lease") { [group] connection -> (String?, Int64, Double?, Double?)? in
            for try await row in try await connection.query(
                """
                SELECT holder, term, extract(epoch FROM now() - renewed_at)::float8,
                    CASE WHEN expires_at = '-infinity' THEN NULL ELSE extract(epoch FROM expires_at - now())::float8 END
                FROM \(unescaped: groups) WHERE group_name = \(group)
                """, logger: Self.quiet
            ).decode((String?, Int64, Double?, Double?).self) {
                return row
            }
            return nil
        }
        return GroupStatus(
            group: group, holder: row?.0, term: row?.1 ?? 0, renewedAgo: row?.2, expiresIn: row?.3,
            positions: [:])
    }

    /// Writes positions into the group without a lease (`state import`): only for sinks the
    /// group has no position for yet, so an import never moves a position the group keeps.
    /// Returns the sinks imported.
    public func importPositions(_ positions: [String: SinkPosition]) async throws(CoordinationError) -> [String] {
        try await prepare()
        let table = table("positions")
        var imported: [String] = []
        for (name, position) in positions.sorted(by: { $0.key < $1.key }) {
            let json = Self.json(position)
            let added = try await run("importing a position") { [group] connection in
                try await connection.query(
                    """
                    INSERT INTO \(unescaped: table) (group_name, sink, position, term, updated_at)
                    VALUES (\(group), \(name), \(json)::jsonb, 0, now())
                    ON CONFLICT (group_name, sink) DO NOTHING RETURNING sink
                    """, logger: Self.quiet
                ).collect().count == 1
            }
            if added { imported.append(name) }
        }
        return imported
    }

    /// A position as the group keeps it: `appendWhole`'s object, without the name's colon.
    static func json(_ position: SinkPosition) -> String {
        var bytes: [UInt8] = []
        position.appendWhole(to: &bytes)
        return String(decoding: bytes.dropFirst(), as: UTF8.self)
    }

    // MARK: The schema

    /// Connects, makes or migrates the tables, and makes the group's row; once per process.
    public func prepare() async throws(CoordinationError) {
        guard !ready else { return }
        let schema = settings.schema
        let version = table("schema")
        let groups = table("groups")
        let positions = table("positions")
        let known = Self.schemaVersion
        let found = try await run("preparing the tables") { connection in
            try await connection.withTransaction(logger: Self.quiet) { connection -> Int in
                // Two members starting at once make the tables once.
                try await connection.query(
                    "SELECT pg_advisory_xact_lock(hashtext(\("openai_auditd " + schema)))", logger: Self.quiet)
                var exists = false
                for try await present in try await connection.query(
                    "SELECT to_regclass(\(version)) IS NOT NULL", logger: Self.quiet
                ).decode(Bool.self) {
                    exists = present
                }
                var found = 0
                if exists {
                    for try await number in try await connection.query(
                        "SELECT coalesce(max(version), 0) FROM \(unescaped: version)", logger: Self.quiet
                    ).decode(Int.self) {
                        found = number
                    }
                }
                guard found <= known else { return found }
                if found < 1 {
                    try await connection.query(
                        "CREATE TABLE IF NOT EXISTS \(unescaped: version) (version integer NOT NULL)",
                        logger: Self.quiet)
                    try await connection.query(
                        """
                        CREATE TABLE \(unescaped: groups) (
                            group_name text PRIMARY KEY,
                            source jsonb NOT NULL,
                            start_at bigint NOT NULL,
                            holder text,
                            term bigint NOT NULL DEFAULT 0,
                            acquired_at timestamptz,
                            renewed_at timestamptz,
                            expires_at timestamptz NOT NULL DEFAULT '-infinity',
                            created_at timestamptz NOT NULL DEFAULT now())
                        """, logger: Self.quiet)
                    try await connection.query(
                        """
                        CREATE TABLE \(unescaped: positions) (
                            group_name text NOT NULL REFERENCES \(unescaped: groups) ON DELETE CASCADE,
                            sink text NOT NULL,
                            position jsonb NOT NULL,
                            term bigint NOT NULL,
                            updated_at timestamptz NOT NULL,
                            PRIMARY KEY (group_name, sink))
                        """, logger: Self.quiet)
                    try await connection.query(
                        "INSERT INTO \(unescaped: version) (version) VALUES (1)", logger: Self.quiet)
                }
                // Later versions migrate here, one step each, in this transaction.
                return found
            }
        }
        if found > known { throw .newerSchema(found: found, known: known) }
        if found < known {
            logger.notice(
                "made the coordination tables",
                metadata: ["coordination.schema": "\(schema)", "coordination.schema_version": "\(known)"])
        }
        try await checkRights()
        try await joinGroup()
        ready = true
    }

    /// The rights the daemon uses on its tables, each one, so that a role that lacks one is
    /// named at the start (and by `check`), not at the first write of a position.
    static let rights: [(table: String, privileges: [String])] = [
        ("schema", ["SELECT"]), ("groups", ["SELECT", "INSERT", "UPDATE"]),
        ("positions", ["SELECT", "INSERT", "UPDATE"]),
    ]

    func checkRights() async throws(CoordinationError) {
        // One row per right; has_table_privilege with a list would be true if *any* is held.
        let tables = Self.rights.flatMap { name, privileges in privileges.map { _ in table(name) } }
        let privileges = Self.rights.flatMap(\.privileges)
        let missing = try await run("checking the role's rights") { connection -> [(String, String, String)] in
            var missing: [(String, String, String)] = []
            for try await row in try await connection.query(
                """
                SELECT current_user::text, r, t FROM unnest(\(tables)::text[], \(privileges)::text[]) AS p(t, r)
                WHERE NOT has_table_privilege(t, r)
                """, logger: Self.quiet
            ).decode((String, String, String).self) {
                missing.append(row)
            }
            return missing
        }
        guard let role = missing.first?.0 else { return }
        throw .refused(
            url: settings.url,
            reason:
                "the role \(role) lacks \(missing.map { "\($0.1) on \($0.2)" }.joined(separator: ", ")) (grant SELECT, INSERT and UPDATE on the openai_auditd_ tables, SELECT on openai_auditd_schema)"
        )
    }

    /// Makes the group's row if it is new, and refuses a group made for another source.
    func joinGroup() async throws(CoordinationError) {
        let groups = table("groups")
        let ours = String(decoding: source.canonicalJSON, as: UTF8.self)
        let recorded = try await run("joining the group") { [group, startAt] connection in
            try await connection.query(
                """
                INSERT INTO \(unescaped: groups) (group_name, source, start_at)
                VALUES (\(group), \(ours)::jsonb, \(startAt)) ON CONFLICT (group_name) DO NOTHING
                """, logger: Self.quiet)
            for try await text in try await connection.query(
                "SELECT source::text FROM \(unescaped: groups) WHERE group_name = \(group)", logger: Self.quiet
            ).decode(String.self) {
                return text
            }
            return ""
        }
        let theirs = try? JSONDecoder().decode(StateSource.self, from: Data(recorded.utf8))
        guard let theirs else {
            throw .refused(url: settings.url, reason: "the row of group '\(group)' holds no source this daemon wrote")
        }
        guard theirs == source else {
            throw .otherSource(group: group, recorded: theirs.description, configured: source.description)
        }
    }

    // MARK: The connection

    /// postgres-nio's own lines name statements and binds; the daemon says what failed itself.
    static let quiet: Logger = {
        var logger = Logger(label: "openai-auditd.postgres")
        logger.logLevel = .critical
        return logger
    }()

    /// Runs `body` on the connection (made first if there is none), within `timeout`; any
    /// failure drops the connection, so the next statement starts on a new one.
    func run<T: Sendable>(
        _ what: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws(CoordinationError) -> T {
        let connection: PostgresConnection
        do {
            connection = try await connected()
        } catch {
            throw .unreachable(url: settings.url, reason: PostgresFailure.describe(error))
        }
        let timedOut = TimeoutFlag()
        let limit = timeout
        do {
            return try await withThrowingTaskGroup(of: T?.self) { tasks in
                tasks.addTask { try await body(connection) }
                tasks.addTask {
                    try await Task.sleep(for: limit)
                    timedOut.set()
                    // Fails the statement in flight: a server that stops answering cannot hold on.
                    connection.close().whenComplete { _ in }
                    return nil
                }
                defer { tasks.cancelAll() }
                guard let first = try await tasks.next(), let value = first else {
                    throw CancellationError()
                }
                return value
            }
        } catch {
            self.connection = nil
            connection.close().whenComplete { _ in }
            if timedOut.isSet {
                throw .unreachable(url: settings.url, reason: "no answer within \(limit) while \(what)")
            }
            if PostgresFailure.isServerError(error) {
                throw .refused(url: settings.url, reason: "\(PostgresFailure.describe(error)), while \(what)")
            }
            throw .unreachable(url: settings.url, reason: PostgresFailure.describe(error))
        }
    }

    func connected() async throws -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        connection = nil
        var configuration = PostgresConnection.Configuration(
            host: settings.host, port: settings.port, username: settings.user, password: password?.value,
            database: settings.database, tls: try tls())
        configuration.options.connectTimeout = .milliseconds(
            Int64(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000))
        connections += 1
        let made = try await PostgresConnection.connect(
            on: eventLoop, configuration: configuration, id: connections, logger: Self.quiet)
        // The renewal, the standby's watch and the cycle share the actor: one of them may have
        // connected while this one waited. Keep one connection; never leave one open unowned.
        if let other = connection, !other.isClosed {
            made.close().whenComplete { _ in }
            return other
        }
        connection = made
        return made
    }

    func tls() throws -> PostgresConnection.Configuration.TLS {
        var tls = TLSConfiguration.makeClientConfiguration()
        switch settings.sslMode {
        case .disable: return .disable
        case .require: tls.certificateVerification = .none
        case .verifyFull:
            tls.certificateVerification = .fullVerification
            if let caFile = settings.caFile { tls.trustRoots = .file(caFile) }
        }
        return .require(try NIOSSLContext(configuration: tls))
    }
}

extension StateSource {
    /// The group members reading this source are in unless `coordination.group` names one:
    /// the organization and a hash of the whole source (base URL, organization, filters).
    public var groupName: String {
        "\(organization ?? "default")-\(String(FNV1a.hash32(canonicalJSON), radix: 16))"
    }

    /// The source as the group's row keeps it, keys sorted, so one source is always one text.
    var canonicalJSON: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(self)) ?? Data()
    }
}

/// Set by a statement's timer when it fired, so the failure that follows is named for it.
final class TimeoutFlag: Sendable {
    let fired = Mutex(false)
    func set() { fired.withLock { $0 = true } }
    var isSet: Bool { fired.withLock { $0 } }
}
