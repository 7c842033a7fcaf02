import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import Prometheus

/// `GET {base}/organization/audit_logs` over one shared, keep-alive `HTTPClient`.
public struct APIClient: AuditLogSource {
    let http: HTTPClient
    let baseURL: String
    let key: AdminKey
    let organization: String?
    let timeout: Duration
    /// `api.max_response_bytes`: checked against `Content-Length` and while the body streams,
    /// after decompression, so a larger body is cut off instead of held.
    let maxResponseBytes: Int
    let retry: RetryPolicy
    let logger: Logger
    /// Named in transport errors (never its credentials): a proxy that refuses is the proxy's fault.
    let proxy: ProxySettings?
    /// `api.tls.ca_file`, named when the API's certificate does not verify (nil: the system's roots).
    let caFile: String?
    /// Requests run on this loop when set, their connections made there (see `EventLoopExecutor`).
    let eventLoop: (any EventLoop)?
    let metrics: DaemonMetrics?
    /// Told about `Retry-After` waits, which readiness does not count as failures, and beaten
    /// through every retry sleep.
    let heartbeat: Heartbeat?
    let retryAfterSpent = RetryPolicy.Budget()
    /// Told how each request went, so the cycle reads as many slices at once as the API
    /// bears; its `Retry-After` hold is waited out before every request. Nil: no one asks.
    let concurrency: AdaptiveConcurrency?

    public init(
        http: HTTPClient, baseURL: String, key: AdminKey, organization: String?, timeout: Duration,
        maxResponseBytes: Int = 32 << 20, proxy: ProxySettings? = nil, caFile: String? = nil,
        retry: RetryPolicy = RetryPolicy(), logger: Logger, eventLoop: (any EventLoop)? = nil,
        metrics: DaemonMetrics? = nil, heartbeat: Heartbeat? = nil, concurrency: AdaptiveConcurrency? = nil
    ) {
        self.concurrency = concurrency
        self.proxy = proxy
        self.caFile = caFile
        self.eventLoop = eventLoop
        self.metrics = metrics
        self.heartbeat = heartbeat
        self.http = http
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.key = key
        self.organization = organization
        self.timeout = timeout
        self.maxResponseBytes = maxResponseBytes
        self.retry = retry
        self.logger = logger
    }

    /// The client every part of the daemon shares: TLS verification on (against `caFile`
    /// when given, else the system's roots), no redirects (the key must not follow one to
    /// another host), keep-alive pool, through `proxy` if any (CONNECT for https). A
    /// connection that cannot be made fails the request at once instead of being tried again
    /// inside the client until the connect timeout: retries are `RetryPolicy`'s alone, and a
    /// certificate that does not verify is named at once, not after ten seconds.
    public static func makeHTTPClient(
        connectTimeout: Duration, proxy: ProxySettings? = nil, caFile: String? = nil
    ) -> HTTPClient {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.timeout.connect = connectTimeout.timeAmount
        configuration.connectionPool.retryConnectionEstablishment = false
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .fullVerification
        if let caFile { tls.trustRoots = .file(caFile) }
        configuration.tlsConfiguration = tls
        if let proxy {
            configuration.proxy = .server(
                host: proxy.host, port: proxy.port,
                authorization: proxy.username.map { .basic(username: $0, password: proxy.password ?? "") })
        }
        configuration.decompression = .enabled(limit: .ratio(100))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func cycleBegins() { retryAfterSpent.reset() }

    public func page(_ query: AuditLogQuery) async throws -> AuditPage {
        var attempt = 0
        var waitedRetryAfter = false
        while true {
            attempt += 1
            if !waitedRetryAfter, let left = concurrency?.retryAfterLeft {
                // Another request was told to wait: this one waits as long.
                heartbeat?.waiting(until: .now + left)
                defer { heartbeat?.waiting(until: nil) }
                try await retry.sleep(left, beating: heartbeat)
            }
            waitedRetryAfter = false
            // No more requests at the API than the concurrency allows, retries included; the
            // permit is held only while the request is in flight, not through a retry's wait.
            // A 429 cuts the limit before the permit is given back: the request waiting for it
            // is not sent into the same 429.
            let sent = try await concurrency?.acquire() ?? .now
            do {
                let page = try await fetch(query)
                concurrency?.release()
                return page
            } catch let error as UpstreamError where error.isRetryable {
                var retryAfter: Duration?
                if case .rateLimited(_, let value) = error { retryAfter = value }
                let wait = retry.delay(afterAttempt: attempt, retryAfter: retryAfter)
                if case .rateLimited = error {
                    concurrency?.pushedBack(sentAt: sent, retryAfter: retryAfter.map { _ in wait })
                }
                concurrency?.release()
                guard attempt < retry.maxAttempts else {
                    throw UpstreamError.retriesExhausted(attempts: attempt, last: error)
                }
                metrics?.apiRetries.increment()
                if retryAfter != nil, !retryAfterSpent.take(wait, limit: retry.maxRetryAfterPerCycle) {
                    logger.warning(
                        "rate limited for longer than one cycle waits; the cycle ends and the next poll starts over",
                        metadata: [
                            "upstream.error": "\(error)",
                            "upstream.retry_after_limit": "\(retry.maxRetryAfterPerCycle.components.seconds)s",
                        ])
                    throw UpstreamError.retriesExhausted(attempts: attempt, last: error)
                }
                logger.warning(
                    "upstream request failed, retrying",
                    metadata: [
                        "upstream.error": "\(error)", "upstream.attempt": "\(attempt)",
                        "upstream.retry_in": "\(wait)",
                    ])
                if retryAfter != nil { heartbeat?.waiting(until: .now + wait) }
                defer { heartbeat?.waiting(until: nil) }
                try await retry.sleep(wait, beating: heartbeat)
                // What it told the others to wait is the wait it just slept.
                waitedRetryAfter = retryAfter != nil
            } catch {
                concurrency?.release()
                throw error
            }
        }
    }

    func fetch(_ query: AuditLogQuery) async throws -> AuditPage {
        let query = query.queryString
        let url = "\(baseURL)/organization/audit_logs" + (query.isEmpty ? "" : "?\(query)")
        var headers = HTTPHeaders()
        headers.add(name: "Authorization", value: "Bearer \(key.value)")
        if let organization { headers.add(name: "OpenAI-Organization", value: organization) }
        headers.add(name: "Accept", value: "application/json")
        headers.add(name: "User-Agent", value: "openai-auditd/\(AuditShipperVersion.current)")
        let response: HTTPClient.Response
        let started = ContinuousClock.now
        do {
            // The body is gathered on the event loop and handed over once: a page costs one
            // thread hop instead of one per chunk, which perf showed as a fifth of the CPU.
            // The loop is preferred, not required: the pool makes its connections there, and a
            // request that must have one on that loop gets a new connection, used once and
            // closed, whenever the pooled ones are busy, which with slices read at once (several
            // requests in flight) was a TCP connection per page and twice the CPU.
            let request = try HTTPClient.Request(url: url, method: .GET, headers: headers)
            let task = http.execute(
                request: request, delegate: ResponseAccumulator(request: request, maxBodySize: maxResponseBytes),
                eventLoop: eventLoop.map { .delegate(on: $0) } ?? .indifferent,
                deadline: .now() + timeout.timeAmount)
            response = try await withTaskCancellationHandler {
                try await task.futureResult.get()
            } onCancel: {
                task.cancel()
            }
        } catch is ResponseAccumulator.ResponseTooBigError {
            metrics?.apiRequests(code: "error").increment()
            throw UpstreamError.malformedPage(
                MalformedPage(
                    reason: "the response is larger than api.max_response_bytes (\(maxResponseBytes) bytes); "
                        + "it was cut off there", offset: maxResponseBytes))
        } catch {
            if Task.isCancelled { throw CancellationError() }
            metrics?.apiRequests(code: "error").increment()
            metrics?.apiRequestDuration(code: "error").record(ContinuousClock.now - started)
            if let error = error as? HTTPClientError, error == .deadlineExceeded || error == .readTimeout {
                concurrency?.pushedBack(sentAt: started)
            }
            let route = proxy.map { " through the proxy \($0)" } ?? ""
            if var reason = TransportFailure.untrusted(error) {
                // Which reason, from a second look at what the server offers (directly only:
                // through a proxy the server is not ours to reach).
                if TransportFailure.failedVerification(error), proxy == nil, let url = URL(string: baseURL),
                    let host = url.host,
                    let found = await TLSDiagnosis.reason(host: host, port: url.port ?? 443, caFile: caFile)
                {
                    reason = found
                }
                let roots =
                    caFile.map { "api.tls.ca_file \($0)" } ?? "the system's (set api.tls.ca_file for a private CA)"
                throw UpstreamError.untrusted(key.redact("\(baseURL)\(route): \(reason); trust roots: \(roots)"))
            }
            throw UpstreamError.transport(key.redact("\(baseURL)\(route): \(Self.describe(error))"))
        }
        let body = response.body ?? ByteBuffer()
        let status = Int(response.status.code)
        let latency = ContinuousClock.now - started
        metrics?.apiRequests(status: status).increment()
        metrics?.apiRequestDuration(status: status).record(latency)
        switch status {
        case 200:
            do {
                var page = try body.withUnsafeReadableBytes { raw in
                    try PageScanner.scan(raw.bindMemory(to: UInt8.self))
                }
                concurrency?.succeeded(after: latency)
                page.serverTime = response.headers.first(name: "Date").flatMap(HTTPDate.parse)
                return page
            } catch let error as MalformedPage {
                throw UpstreamError.malformedPage(error)
            }
        case 401, 403:
            throw UpstreamError.keyRejected(status: status, message: apiMessage(body))
        case 429:
            // An HTTP-date is the server's clock: read against its own Date header, so that a
            // local clock that disagrees neither skips the wait nor makes it a day.
            let serverNow =
                response.headers.first(name: "Date").flatMap(HTTPDate.parse) ?? Int64(Date().timeIntervalSince1970)
            let retryAfter = response.headers.first(name: "Retry-After").flatMap {
                RetryPolicy.parseRetryAfter($0, now: serverNow)
            }
            throw UpstreamError.rateLimited(message: apiMessage(body), retryAfter: retryAfter)
        case 500...599:
            throw UpstreamError.serverError(status: status, message: apiMessage(body))
        default:
            throw UpstreamError.badRequest(status: status, message: apiMessage(body))
        }
    }

    /// A transport failure in an operator's words (`TransportFailure`), a proxy's refusals too.
    static func describe(_ error: any Error) -> String {
        switch error {
        case let http as HTTPClientError where http == .proxyAuthenticationRequired:
            "the proxy asks for credentials (407): give them in api.proxy or HTTPS_PROXY as http://user:password@host:port"
        case let http as HTTPClientError where http == .invalidProxyResponse:
            "the proxy refused to open a tunnel to the API (CONNECT answered other than 2xx): check its credentials and whether it allows this host and port"
        default: TransportFailure.describe(error)
        }
    }

    /// The API's `error.message` (with its `param` when the message does not name it), or
    /// the start of whatever else came back; never the key.
    func apiMessage(_ body: ByteBuffer) -> String {
        struct Envelope: Decodable {
            struct Detail: Decodable {
                let message: String?
                let param: String?
            }
            let error: Detail?
        }
        let bytes = Data(body.readableBytesView)
        var message: String
        if let envelope = try? JSONDecoder().decode(Envelope.self, from: bytes), let text = envelope.error?.message {
            message = text
            if let param = envelope.error?.param, !param.isEmpty, !text.contains(param) {
                message += " (parameter \(param))"
            }
        } else {
            let text = String(decoding: bytes.prefix(300), as: UTF8.self)
            message = text.isEmpty ? "(empty body)" : text
        }
        return key.redact(String(message.prefix(1000)).replacingAll("\n", with: " "))
    }
}
