/// What went wrong talking to the API. Messages carry the API's own words, never the key.
public indirect enum UpstreamError: Error, CustomStringConvertible, Sendable {
    /// 401 or 403: the key is wrong, lacks `api.audit_logs.read`, or was revoked.
    case keyRejected(status: Int, message: String)
    /// 400 and other 4xx: a bug or a bad filter; retrying the same request cannot help.
    case badRequest(status: Int, message: String)
    case rateLimited(message: String, retryAfter: Duration?)
    case serverError(status: Int, message: String)
    /// Connection refused or reset, a timeout, a TLS handshake that failed for another reason
    /// than trust (a peer that does not speak TLS, or closed the connection).
    case transport(String)
    /// The API's TLS certificate is not trusted (it does not verify against the trust roots,
    /// or names another host): no retry can fix that, only the certificate, `api.tls.ca_file`
    /// or the network in between (an intercepting proxy).
    case untrusted(String)
    case malformedPage(MalformedPage)
    /// A retryable error persisted through every attempt.
    case retriesExhausted(attempts: Int, last: UpstreamError)

    public var description: String {
        switch self {
        case .keyRejected(let status, let message): "the API rejected the admin key (HTTP \(status)): \(message)"
        case .badRequest(let status, let message): "the API refused the request (HTTP \(status)): \(message)"
        case .rateLimited(let message, _): "rate limited by the API (HTTP 429): \(message)"
        case .serverError(let status, let message): "the API failed (HTTP \(status)): \(message)"
        case .transport(let message): "cannot reach the API: \(message)"
        case .untrusted(let message): "the API's TLS certificate is not trusted: \(message)"
        case .malformedPage(let page): "the API sent a \(page)"
        case .retriesExhausted(let attempts, let last): "\(last) (gave up after \(attempts) attempts)"
        }
    }

    /// 429, 5xx, network faults and malformed pages are worth another try within a cycle.
    public var isRetryable: Bool {
        switch self {
        case .rateLimited, .serverError, .transport, .malformedPage: true
        case .keyRejected, .badRequest, .untrusted, .retriesExhausted: false
        }
    }

    /// 401 or 403, however many attempts led there.
    public var isKeyRejected: Bool {
        if case .keyRejected = underlying { return true }
        return false
    }

    /// The API's certificate does not verify or names another host.
    public var isUntrusted: Bool {
        if case .untrusted = underlying { return true }
        return false
    }

    /// A refusal that only the configuration can fix: a 400 that names a filter, the page
    /// size or `tenant_only` (`AuditLogQuery.parameterNames`). Any other 4xx or a 3xx (a
    /// gateway's transient 404, a redirect) may pass; `run` retries it at the next poll.
    public var refusesConfiguration: Bool {
        guard case .badRequest(400, let message) = underlying else { return false }
        return AuditLogQuery.parameterNames.contains { message.contains($0) }
    }

    /// The error at the root of a `retriesExhausted` chain.
    public var underlying: UpstreamError {
        if case .retriesExhausted(_, let last) = self { return last.underlying }
        return self
    }
}
