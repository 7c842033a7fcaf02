import PostgresNIO

/// PostgreSQL's failures in an operator's words: the server's own message where it sent one
/// (a wrong password, a missing right), else what the connection met (`TransportFailure`).
/// postgres-nio's own descriptions name nothing, on purpose; its type names are never shown.
enum PostgresFailure {
    static func describe(_ error: any Error) -> String {
        if let transaction = error as? PostgresTransactionError {
            let inner = transaction.beginError ?? transaction.closureError ?? transaction.commitError
            return inner.map(describe) ?? "the transaction failed"
        }
        guard let psql = error as? PSQLError else { return TransportFailure.describe(error) }
        switch psql.code {
        case .server:
            let message = psql.serverInfo?[.message] ?? "an error"
            let state = psql.serverInfo?[.sqlState] ?? ""
            switch state {
            case "28P01", "28000":
                return "\(message) (check the user in coordination.url, the password, and pg_hba.conf)"
            case "42501":
                return
                    "\(message) (the role needs CREATE on the schema for the first start, then SELECT, INSERT and UPDATE on the openai_auditd_ tables)"
            case "3D000": return "\(message) (create the database, or correct coordination.url)"
            case "57P01", "57P02", "57P03": return "\(message) (the server is shutting down or starting)"
            default: return state.isEmpty ? message : "\(message) (SQLSTATE \(state))"
            }
        case .sslUnsupported:
            return
                "the server does not offer TLS (turn ssl on in postgresql.conf; sslmode=disable is allowed only to a loopback host)"
        case .authMechanismRequiresPassword:
            return
                "the server asks for a password and none was given (coordination.password_file, the systemd credential postgres-password, or PGPASSWORD)"
        case .unsupportedAuthMechanism:
            return "the server asks for an authentication method the daemon does not speak (use scram-sha-256 or md5)"
        case .saslError: return "SCRAM authentication failed (check the password)"
        case .serverClosedConnection, .uncleanShutdown:
            return psql.underlying.map { "the server closed the connection (\(TransportFailure.describe($0)))" }
                ?? "the server closed the connection"
        case .clientClosedConnection: return "the connection was closed"
        case .connectionError, .failedToAddSSLHandler:
            return psql.underlying.map(TransportFailure.describe) ?? "the connection failed"
        case .queryCancelled: return "the statement was cancelled"
        default: return "the server's answer could not be read"
        }
    }

    /// Whether the failure is the server's answer (a right, a table), not the way to it.
    static func isServerError(_ error: any Error) -> Bool {
        if let transaction = error as? PostgresTransactionError {
            return (transaction.beginError ?? transaction.closureError ?? transaction.commitError)
                .map(isServerError) ?? false
        }
        guard let psql = error as? PSQLError, psql.code == .server else { return false }
        // Authentication and a server shutting down are the way to it, not the tables.
        let state = psql.serverInfo?[.sqlState] ?? ""
        return !state.hasPrefix("28") && !state.hasPrefix("57") && !state.hasPrefix("08")
    }
}
