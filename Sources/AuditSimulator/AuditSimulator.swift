import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// A fake OpenAI Admin API on loopback: `GET /v1/organization/audit_logs` with the semantics
/// of API.md, plus a control interface under `/_sim/` (see `ControlRoutes`).
public final class AuditSimulator: Sendable {
    public let store = EventStore()
    public let faults = FaultQueue()
    public let requests = RequestLog()
    public let adminKey: String
    let generator: Mutex<EventGenerator>
    let channel = Mutex<(any Channel)?>(nil)
    /// Serving HTTPS (the API's certificate and key); nil for plain http.
    let tls = Mutex<NIOSSLContext?>(nil)
    /// Seconds the simulator's clock (its `Date` header) is ahead of this machine's.
    public let clockSkew = Mutex<Int64>(0)
    /// Answers `tenant_only=true` with a 400 naming it, as an API without the parameter would.
    public let rejectTenantOnly = Mutex(false)
    /// TCP connections accepted so far: a client that keeps its connections open makes few.
    public let connections = Mutex(0)

    public init(adminKey: String = "sk-admin-simulator-0000000000000000", seed: UInt64 = 1, trickyRate: Double = 0.05) {
        self.adminKey = adminKey
        generator = Mutex(EventGenerator(seed: seed, trickyRate: trickyRate))
    }

    /// Binds and serves; returns the port (pass 0 for any free one). With `certificate` and
    /// `privateKey` (PEM files) it serves HTTPS, as the real API does.
    @discardableResult
    public func start(
        host: String = "127.0.0.1", port: Int = 0, certificate: String? = nil, privateKey: String? = nil
    ) async throws -> Int {
        if let certificate, let privateKey {
            let configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: privateKey, format: .pem)))
            let context = try NIOSSLContext(configuration: configuration)
            tls.withLock { $0 = context }
        }
        let context = tls.withLock { $0 }
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                connections.withLock { $0 += 1 }
                return channel.eventLoop.makeCompletedFuture {
                    if let context {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(SimulatorHandler(simulator: self))
                }
            }
        let bound = try await bootstrap.bind(host: host, port: port).get()
        channel.withLock { $0 = bound }
        return bound.localAddress?.port ?? port
    }

    public var port: Int { channel.withLock { $0?.localAddress?.port ?? 0 } }
    public var baseURL: String { "\(tls.withLock { $0 } == nil ? "http" : "https")://127.0.0.1:\(port)/v1" }

    public func stop() async throws {
        let bound = channel.withLock { current -> (any Channel)? in
            defer { current = nil }
            return current
        }
        try await bound?.close()
    }

    /// Adds `count` generated events spread evenly over `[from, to]`; returns their ids.
    /// `types` (taken in turn) defaults to all 145, tenant-scoped ones included.
    @discardableResult
    public func addEvents(
        count: Int, from: Int64, to: Int64? = nil, types: [String]? = nil, tricky: Bool? = nil, large: Bool = false,
        visibleAfter: Double = 0
    ) -> [String] {
        let to = to ?? from
        let visibleAt = visibleAfter > 0 ? Date().timeIntervalSince1970 + visibleAfter : 0
        let events = generator.withLock { generator in
            (0..<count).map { index in
                let at = count > 1 ? from + (to - from) * Int64(index) / Int64(count - 1) : from
                let type = types.flatMap { $0.isEmpty ? nil : $0[index % $0.count] }
                return generator.make(type: type, at: at, tricky: tricky, large: large, visibleAt: visibleAt)
            }
        }
        store.add(events)
        return events.map(\.id)
    }

    /// Adds events given as JSON objects, served as given (apart from spacing).
    /// Adds `values` as given. With `listedAt`, a value that is no event (no string id or
    /// type, no integer effective_at) is kept too and listed as if stamped then: a server that
    /// writes one item of a page wrong, as the shipper must survive.
    public func addRaw(_ values: [JSONValue], visibleAfter: Double = 0, listedAt: Int64? = nil) throws(APIFailure)
        -> [String]
    {
        let visibleAt = visibleAfter > 0 ? Date().timeIntervalSince1970 + visibleAfter : 0
        var events: [SimulatedEvent] = []
        for (index, value) in values.enumerated() {
            if let event = SimulatedEvent(value: value, visibleAt: visibleAt) {
                events.append(event)
                continue
            }
            guard let listedAt else {
                throw .badRequest("events[\(index)] needs a string id and type and an integer effective_at", param: nil)
            }
            var json: [UInt8] = []
            value.write(into: &json, spaced: true)
            events.append(
                SimulatedEvent(
                    id: value["id"]?.stringValue ?? "unreadable-\(index)-\(UUID().uuidString)",
                    type: value["type"]?.stringValue ?? "unreadable", effectiveAt: listedAt, projectID: nil,
                    actorIDs: [], actorEmail: nil, resourceID: nil, isTenant: false, visibleAt: visibleAt, json: json))
        }
        store.add(events)
        return events.map(\.id)
    }

    /// The server's clock as its `Date` header gives it (IMF-fixdate, RFC 9110 §5.6.7).
    public func dateHeader() -> String {
        var seconds = time_t(Int64(Date().timeIntervalSince1970) + clockSkew.withLock { $0 })
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return
            "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }

    public func reset() {
        clockSkew.withLock { $0 = 0 }
        rejectTenantOnly.withLock { $0 = false }
        store.oldestFirst.withLock { $0 = false }
        store.removeAll()
        faults.removeAll()
        requests.removeAll()
    }

    /// Answers one audit log request: the status, extra headers and body, or a fault to act out.
    func answer(uri: String, headers: HTTPHeaders) -> Response {
        let (path, query) = Self.split(uri)
        guard path.hasSuffix("/organization/audit_logs") else {
            return .json(
                404,
                APIFailure(
                    status: 404, message: "Unknown path \(path)", type: "invalid_request_error", param: nil, code: nil
                ).body)
        }
        let bearer = headers.first(name: "Authorization") ?? ""
        guard bearer == "Bearer \(adminKey)" else {
            let key = bearer.hasPrefix("Bearer ") ? String(bearer.dropFirst(7)) : ""
            let masked = key.count > 8 ? "\(key.prefix(6))***\(key.suffix(4))" : "***"
            let message =
                key.hasPrefix("sk-admin")
                ? "Incorrect API key provided: \(masked). You can find your API key at https://platform.openai.com/account/api-keys."
                : key.isEmpty
                    ? "You didn't provide an API key."
                    : "You have insufficient permissions for this operation. Missing scopes: api.audit_logs.read."
            return .json(
                401,
                APIFailure(
                    status: 401, message: message, type: "invalid_request_error", param: nil, code: "invalid_api_key"
                ).body)
        }
        if rejectTenantOnly.withLock({ $0 }), query.split(separator: "&").contains("tenant_only=true") {
            return .json(
                400,
                APIFailure(
                    status: 400, message: "Unrecognized request argument supplied: tenant_only",
                    type: "invalid_request_error", param: "tenant_only", code: nil
                ).body)
        }
        var delay = 0
        if let fault = faults.next() {
            switch fault {
            case .status(let status, let retryAfter):
                let message =
                    status == 429
                    ? "Rate limit reached for audit logs." : "The server had an error while processing your request."
                var response = Response.json(
                    status,
                    APIFailure(
                        status: status, message: message, type: status == 429 ? "rate_limit_exceeded" : "server_error",
                        param: nil, code: nil
                    ).body)
                if let retryAfter { response.headers.append(("Retry-After", retryAfter)) }
                return response
            case .reset: return Response(status: 0, headers: [], body: [], reset: true)
            case .slow(let milliseconds): delay = milliseconds
            case .pass: break
            case .rewind:
                let first = query.split(separator: "&").filter { !$0.hasPrefix("after=") }.joined(separator: "&")
                return listing(first)
            case .huge(let bytes):
                var response = Response.json(200, [])
                response.streamedBytes = bytes
                return response
            case .malformed(let kind):
                switch kind {
                case .notJSON:
                    return Response(
                        status: 200, headers: [("Content-Type", "text/html")],
                        body: Array("<html><body>502 Bad Gateway</body></html>".utf8))
                case .noData: return .json(200, Array(#"{"object": "list", "has_more": false}"#.utf8))
                case .emptyHasMore:
                    return .json(
                        200,
                        Array(
                            #"{"object": "list", "data": [], "first_id": null, "last_id": null, "has_more": true}"#.utf8
                        ))
                case .truncated:
                    var full = listing(query)
                    if full.status == 200 { full.body = Array(full.body.prefix(max(1, full.body.count / 2))) }
                    return full
                }
            }
        }
        var response = listing(query)
        response.delayMilliseconds = delay
        return response
    }

    func listing(_ query: String) -> Response {
        do {
            let page = try store.list(try ListQuery.parse(query), now: Date().timeIntervalSince1970)
            return .json(200, EventStore.body(page))
        } catch {
            return .json(error.status, error.body)
        }
    }

    static func split(_ uri: String) -> (path: String, query: String) {
        guard let mark = uri.firstIndex(of: "?") else { return (uri, "") }
        return (String(uri[..<mark]), String(uri[uri.index(after: mark)...]))
    }

    struct Response {
        var status: Int
        var headers: [(String, String)]
        var body: [UInt8]
        var reset = false
        var delayMilliseconds = 0
        /// When positive, the body is this many bytes streamed in chunks (`Fault.huge`).
        var streamedBytes = 0

        static func json(_ status: Int, _ body: [UInt8]) -> Response {
            Response(status: status, headers: [("Content-Type", "application/json")], body: body)
        }
    }
}
