import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// One HTTP sink's own connection pool to its server: TLS verification always on (against
/// `tls.ca_file` or the system's roots, with a client certificate when given, `server_name`
/// verified instead of the URL's host), no redirects (a token must not follow one), no proxy
/// unless the sink names one, bodies gzip-compressed when asked. One request per call: what
/// to retry, and when, is the sink's (with `RetryPolicy`'s delays), as only it knows whether
/// a request may be repeated.
final class HTTPSinkClient: Sendable {
    struct Response: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
        var text: String { String(decoding: body.prefix(1000), as: UTF8.self) }
    }

    /// A request that got no response, or a `tls:` file that cannot be read, in an operator's
    /// words; `untrusted` is a certificate that does not verify or name the host, which no
    /// retry changes.
    struct Failure: Error, CustomStringConvertible {
        var reason: String
        var untrusted: Bool
        var description: String { reason }
    }

    let settings: Configuration.HTTPSinkSettings
    let configuration: HTTPClient.Configuration
    /// Made at the first request, so that a daemon whose start fails on a later sink has no
    /// pool to shut down for this one.
    let pool = Mutex<HTTPClient?>(nil)
    /// Requests go to this base: the URL's, with `server_name` as the host when given (the
    /// name the certificate is verified against), the connection still made to the URL's host.
    let base: String
    /// Removed from every text that leaves here (a server echoing the token, an error).
    let secret: AdminKey?
    /// The largest response body read; HEC and `_bulk` answers are far smaller.
    static let maxResponseBytes = 8 << 20

    init(settings: Configuration.HTTPSinkSettings, secret: AdminKey?) throws {
        self.settings = settings
        self.secret = secret
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.timeout.connect = min(settings.timeout, .seconds(10)).timeAmount
        configuration.connectionPool.retryConnectionEstablishment = false
        // A file that is not there is named as such, not as the TLS library's error type.
        for (key, path) in [
            ("ca_file", settings.tls.caFile), ("cert_file", settings.tls.certFile), ("key_file", settings.tls.keyFile),
        ] {
            guard let path, !FileManager.default.isReadableFile(atPath: path) else { continue }
            let why = FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file"
            throw Failure(reason: "cannot read tls.\(key) \(path): \(why)", untrusted: false)
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .fullVerification
        if let caFile = settings.tls.caFile {
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
        }
        if let certFile = settings.tls.certFile, let keyFile = settings.tls.keyFile {
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certFile).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
        }
        configuration.tlsConfiguration = tls
        if let text = settings.proxy, case .success(let proxy) = ProxySettings.parse(text, origin: "proxy") {
            configuration.proxy = .server(
                host: proxy.host, port: proxy.port,
                authorization: proxy.username.map { .basic(username: $0, password: proxy.password ?? "") })
        }
        var base = settings.url
        if let serverName = settings.tls.serverName, var url = URLComponents(string: settings.url), let host = url.host
        {
            configuration.dnsOverride = [serverName: host]
            url.host = serverName
            base = url.string ?? settings.url
        }
        self.base = base
        configuration.decompression = .enabled(limit: .ratio(100))
        self.configuration = configuration
    }

    var http: HTTPClient {
        pool.withLock { pool in
            if let pool { return pool }
            let made = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            pool = made
            return made
        }
    }

    /// `method` to `path` (with its query) under the base URL; the response whatever its status.
    func send(
        _ method: HTTPMethod, _ path: String, headers: HTTPHeaders = [:], body: [UInt8]? = nil
    ) async throws(Failure) -> Response {
        var headers = headers
        headers.add(name: "User-Agent", value: "openai-auditd/\(AuditShipperVersion.current)")
        var payload = body
        if let body {
            if !headers.contains(name: "Content-Type") { headers.add(name: "Content-Type", value: "application/json") }
            if settings.gzip {
                payload = Gzip.compress(body)
                headers.add(name: "Content-Encoding", value: "gzip")
            }
        }
        let response: HTTPClient.Response
        do {
            let request = try HTTPClient.Request(
                url: base + path, method: method, headers: headers, body: payload.map { .bytes($0) })
            let task = http.execute(
                request: request, delegate: ResponseAccumulator(request: request, maxBodySize: Self.maxResponseBytes),
                deadline: .now() + settings.timeout.timeAmount)
            response = try await withTaskCancellationHandler {
                try await task.futureResult.get()
            } onCancel: {
                task.cancel()
            }
        } catch {
            throw Failure(reason: redact(describe(error)), untrusted: TransportFailure.untrusted(error) != nil)
        }
        let bytes = response.body.map { Array($0.readableBytesView) } ?? []
        return Response(status: Int(response.status.code), headers: response.headers, body: bytes)
    }

    func describe(_ error: any Error) -> String {
        let route =
            settings.proxy.flatMap { try? ProxySettings.parse($0, origin: "proxy").get() }
            .map { " through the proxy \($0.url)" } ?? ""
        if let reason = TransportFailure.untrusted(error, host: URLComponents(string: base)?.host) {
            let roots =
                settings.tls.caFile.map { "tls.ca_file \($0)" } ?? "the system's (set tls.ca_file for a private CA)"
            return "\(settings.url)\(route): TLS: \(reason); trust roots: \(roots)"
        }
        let reason: String
        switch error {
        case let http as HTTPClientError where http == .readTimeout || http == .deadlineExceeded:
            reason = "no answer within the sink's timeout (\(settings.timeout.components.seconds)s)"
        case is ResponseAccumulator.ResponseTooBigError:
            reason = "the response is larger than \(Self.maxResponseBytes >> 20) MiB; it was cut off there"
        default:
            reason = APIClient.describe(error)
        }
        return "\(settings.url)\(route): \(reason)"
    }

    func redact(_ text: String) -> String { secret?.redact(text) ?? text }

    func close() async {
        let made = pool.withLock { pool in
            defer { pool = nil }
            return pool
        }
        try? await made?.shutdown()
    }
}
