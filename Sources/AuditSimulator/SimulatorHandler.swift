import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// One HTTP connection of the simulator: collects a request, answers it or acts out a fault.
final class SimulatorHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let simulator: AuditSimulator
    var head: HTTPRequestHead?
    var body: [UInt8] = []

    init(simulator: AuditSimulator) { self.simulator = simulator }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
        case .body(let buffer):
            body.append(contentsOf: buffer.readableBytesView)
        case .end:
            guard let head else { return }
            self.head = nil
            handle(head, context: context)
        }
    }

    func handle(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        if head.uri.hasPrefix("/_sim/") {
            let (status, reply) = ControlRoutes.handle(
                simulator: simulator, method: head.method, uri: head.uri, body: body)
            send(AuditSimulator.Response.json(status, reply), head: head, context: context)
            return
        }
        guard head.method == .GET else {
            send(
                .json(
                    405,
                    APIFailure(
                        status: 405, message: "Method not allowed", type: "invalid_request_error", param: nil, code: nil
                    ).body), head: head, context: context)
            return
        }
        let response = simulator.answer(uri: head.uri, headers: head.headers)
        simulator.requests.record(
            .init(
                uri: head.uri, status: response.reset ? 0 : response.status,
                organization: head.headers.first(name: "OpenAI-Organization")))
        if response.reset {
            // SO_LINGER 0 makes close() send RST: the client sees "connection reset by peer".
            let channel = context.channel
            if let provider = channel as? any SocketOptionProvider {
                provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
            } else {
                channel.close(promise: nil)
            }
            return
        }
        if response.delayMilliseconds > 0 {
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: .milliseconds(Int64(response.delayMilliseconds))) {
                let (handler, context) = bound.value
                handler.send(response, head: head, context: context)
            }
            return
        }
        send(response, head: head, context: context)
    }

    func send(_ response: AuditSimulator.Response, head: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = HTTPHeaders(response.headers)
        headers.add(name: "Date", value: simulator.dateHeader())
        if response.streamedBytes > 0 {
            stream(response.streamedBytes, headers: headers, head: head, context: context)
            return
        }
        headers.add(name: "Content-Length", value: String(response.body.count))
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let responseHead = HTTPResponseHead(
            version: head.version, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
        context.write(
            wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    /// A page that never ends, chunk after chunk, each written when the last one was taken:
    /// the simulator holds one chunk, whatever the client does. The client is expected to
    /// cut it off; the connection is closed after the last chunk either way.
    func stream(_ bytes: Int, headers: HTTPHeaders, head: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = headers
        headers.add(name: "Connection", value: "close")
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil
        )
        context.flush()
        let opening = Array(#"{"object":"list","data":[{"id":"audit_log-huge","type":"login.succeeded","pad":""#.utf8)
        let channel = context.channel
        let chunk = channel.allocator.buffer(repeating: UInt8(ascii: "A"), count: 1 << 20)
        @Sendable func next(_ remaining: Int) {
            guard remaining > 0, channel.isActive else {
                channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in channel.close(promise: nil) }
                return
            }
            let piece = remaining == bytes ? channel.allocator.buffer(bytes: opening) : chunk
            let size = min(piece.readableBytes, remaining)
            let part = HTTPServerResponsePart.body(.byteBuffer(piece.getSlice(at: piece.readerIndex, length: size)!))
            channel.writeAndFlush(part).whenComplete { result in
                if case .failure = result { return channel.close(promise: nil) }
                next(remaining - size)
            }
        }
        next(bytes)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// The control interface used by tests, the demo and the benchmark (JSON in, JSON out):
///
/// - `POST /_sim/events` `{"count", "from", "to", "type", "tricky", "large", "visible_after"}`
///   adds generated events spread over `[from, to]` (default: now), hidden for
///   `visible_after` seconds (late arrival); answers `{"added", "ids"}`.
/// - `POST /_sim/events/raw?visible_after=S` with a JSON array of events adds them as given;
///   with `listed_at=T`, items that are no event (an `effective_at` that is a string) too,
///   listed as if stamped at T.
/// - `POST /_sim/faults` `{"kind": "status"|"reset"|"slow"|"malformed"|"pass"|"rewind"|"huge",
///   "status", "retry_after", "delay_ms", "variant": "truncated"|"not_json"|"no_data"|
///   "empty_has_more", "bytes", "count"}` queues a fault for the next `count` audit log requests.
/// - `POST /_sim/clock` `{"skew": S}` sets the server's clock (its `Date` header) S seconds
///   ahead of the machine's (negative: behind).
/// - `POST /_sim/tenant_only` `{"reject": true}` makes `tenant_only=true` a 400 naming it.
/// - `GET /_sim/stats` counts; `GET /_sim/requests` the audit log URIs asked; `POST /_sim/reset`.
enum ControlRoutes {
    struct AddEvents: Decodable {
        var count: Int
        var from: Int64?
        var to: Int64?
        var type: String?
        var tricky: Bool?
        var large: Bool?
        var visible_after: Double?
    }

    struct AddFault: Decodable {
        var kind: String
        var status: Int?
        var retry_after: String?
        var delay_ms: Int?
        var variant: String?
        var count: Int?
        var bytes: Int?
    }

    struct SetClock: Decodable {
        var skew: Int64
    }

    struct SetTenantOnly: Decodable {
        var reject: Bool
    }

    static func handle(simulator: AuditSimulator, method: HTTPMethod, uri: String, body: [UInt8]) -> (Int, [UInt8]) {
        let (path, query) = AuditSimulator.split(uri)
        let decoder = JSONDecoder()
        func fail(_ message: String) -> (Int, [UInt8]) { (400, APIFailure.badRequest(message, param: nil).body) }
        switch (method, path) {
        case (.POST, "/_sim/events"):
            guard let request = try? decoder.decode(AddEvents.self, from: Data(body)), request.count >= 0 else {
                return fail("expected {\"count\": N, \"from\": unix, \"to\": unix, ...}")
            }
            if let type = request.type, !EventGenerator.types.contains(type) { return fail("unknown type \(type)") }
            let now = Int64(Date().timeIntervalSince1970)
            let ids = simulator.addEvents(
                count: request.count, from: request.from ?? now, to: request.to, types: request.type.map { [$0] },
                tricky: request.tricky, large: request.large ?? false, visibleAfter: request.visible_after ?? 0)
            let listed = ids.count <= 10_000 ? ids.map(JSONValue.string) : []
            return (200, JSONValue.object([("added", .integer(Int64(ids.count))), ("ids", .array(listed))]).bytes)
        case (.POST, "/_sim/events/raw"):
            guard let values = try? decoder.decode([JSONValue].self, from: Data(body)) else {
                return fail("expected a JSON array of events")
            }
            func parameter(_ name: String) -> Substring? {
                query.split(separator: "&").first { $0.hasPrefix(name + "=") }?.dropFirst(name.count + 1)
            }
            let visibleAfter = parameter("visible_after").flatMap { Double($0) } ?? 0
            do {
                let ids = try simulator.addRaw(
                    values, visibleAfter: visibleAfter, listedAt: parameter("listed_at").flatMap { Int64($0) })
                return (
                    200,
                    JSONValue.object([
                        ("added", .integer(Int64(ids.count))), ("ids", .array(ids.map(JSONValue.string))),
                    ]).bytes
                )
            } catch {
                return (error.status, error.body)
            }
        case (.POST, "/_sim/faults"):
            guard let request = try? decoder.decode(AddFault.self, from: Data(body)) else {
                return fail(
                    "expected {\"kind\": \"status\"|\"reset\"|\"slow\"|\"malformed\"|\"pass\"|\"rewind\"|\"huge\", ...}"
                )
            }
            let fault: Fault
            switch request.kind {
            case "status": fault = .status(request.status ?? 500, retryAfter: request.retry_after)
            case "reset": fault = .reset
            case "slow": fault = .slow(milliseconds: request.delay_ms ?? 1000)
            case "malformed":
                guard let kind = MalformedKind(rawValue: request.variant ?? "truncated") else {
                    return fail("variant is one of \(MalformedKind.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                fault = .malformed(kind)
            case "pass": fault = .pass
            case "rewind": fault = .rewind
            case "huge": fault = .huge(bytes: max(1, request.bytes ?? 96 << 20))
            default: return fail("kind is one of status, reset, slow, malformed, pass, rewind, huge")
            }
            simulator.faults.enqueue(fault, count: request.count ?? 1)
            return (200, JSONValue.object([("pending", .integer(Int64(simulator.faults.pending)))]).bytes)
        case (.POST, "/_sim/clock"):
            guard let request = try? decoder.decode(SetClock.self, from: Data(body)) else {
                return fail("expected {\"skew\": seconds the server's clock is ahead (negative: behind)}")
            }
            simulator.clockSkew.withLock { $0 = request.skew }
            return (200, JSONValue.object([("skew", .integer(request.skew))]).bytes)
        case (.POST, "/_sim/tenant_only"):
            guard let request = try? decoder.decode(SetTenantOnly.self, from: Data(body)) else {
                return fail("expected {\"reject\": true|false}")
            }
            simulator.rejectTenantOnly.withLock { $0 = request.reject }
            return (200, JSONValue.object([("reject", .bool(request.reject))]).bytes)
        case (.GET, "/_sim/stats"):
            let entries = simulator.requests.all
            var statuses: [Int: Int] = [:]
            for entry in entries { statuses[entry.status, default: 0] += 1 }
            return (
                200,
                JSONValue.object([
                    ("events", .integer(Int64(simulator.store.count))), ("requests", .integer(Int64(entries.count))),
                    (
                        "statuses",
                        .object(statuses.sorted { $0.key < $1.key }.map { ("\($0.key)", .integer(Int64($0.value))) })
                    ),
                    ("pending_faults", .integer(Int64(simulator.faults.pending))),
                    ("connections", .integer(Int64(simulator.connections.withLock { $0 }))),
                ]).bytes
            )
        case (.GET, "/_sim/requests"):
            return (200, JSONValue.object([("requests", .array(simulator.requests.all.map { .string($0.uri) }))]).bytes)
        case (.POST, "/_sim/reset"):
            simulator.reset()
            return (200, Array("{}".utf8))
        default:
            return (
                404,
                APIFailure(
                    status: 404, message: "unknown control route \(method) \(path)", type: "invalid_request_error",
                    param: nil, code: nil
                ).body
            )
        }
    }
}
