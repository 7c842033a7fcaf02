import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// `metrics.listen`: `GET /metrics` (Prometheus text format 0.0.4), `/healthz` (the poll loop
/// is alive: the watchdog's condition) and `/readyz` (started, and the last cycle succeeded
/// within three poll intervals). 404 for other paths, 405 for other methods.
///
/// It runs on its own event loop, never the cycle's, so a scrape never delays a cycle; at most
/// `maxConnections` at once and `maxPerPeer` from one address, a newcomer taking the place of
/// the connection that waited longest for its request (`MetricsConnections`); a request head
/// must be complete within `headDeadline` (`HeadDeadline`), and a connection idle for
/// `readTimeout` is closed.
public final class MetricsServer: Service, Sendable {
    public let host: String
    public let port: Int
    let metrics: DaemonMetrics
    let health: ServiceHealth
    let logger: Logger
    static let maxConnections = 16
    static let maxPerPeer = 8
    static let headDeadline = TimeAmount.seconds(5)
    static let readTimeout = TimeAmount.seconds(10)
    let channel: Mutex<(any Channel)?> = Mutex(nil)
    /// A thread of its own: a scrape never runs on the cycle's event loop.
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    public init(host: String, port: Int, metrics: DaemonMetrics, health: ServiceHealth, logger: Logger) {
        self.host = host
        self.port = port
        self.metrics = metrics
        self.health = health
        self.logger = logger
    }

    /// Binds now, so that a port in use fails start-up (78) instead of a later scrape.
    public func bind() async throws -> any Channel {
        let connections = MetricsConnections(limit: Self.maxConnections, perPeer: Self.maxPerPeer)
        let metrics = self.metrics
        let health = self.health
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let (admitted, evicted) = connections.admit(
                    channel, peer: channel.remoteAddress?.ipAddress ?? "unknown")
                evicted?.close(promise: nil)
                guard admitted else { return channel.close() }
                channel.closeFuture.whenComplete { _ in connections.remove(channel) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: Self.readTimeout))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(
                        HeadDeadline(limit: Self.headDeadline, connections: connections))
                    try channel.pipeline.syncOperations.addHandler(Responder(metrics: metrics, health: health))
                }
            }
        do {
            let bound = try await bootstrap.bind(host: host, port: port).get()
            channel.withLock { $0 = bound }
            return bound
        } catch {
            try? await group.shutdownGracefully()
            throw ConfigurationError.invalid(
                origin: "configuration", path: "metrics.listen",
                message: "cannot listen on \(host):\(port): \(error)")
        }
    }

    public func run() async throws {
        let existing = channel.withLock { $0 }
        let bound = if let existing { existing } else { try await bind() }
        logger.info("metrics endpoint listening", metadata: ["metrics.listen": "\(host):\(port)"])
        try await withGracefulShutdownHandler {
            try await bound.closeFuture.get()
        } onGracefulShutdown: {
            bound.close(promise: nil)
        }
        try? await group.shutdownGracefully()
    }

    /// One request, one response; keep-alive as the client asks.
    final class Responder: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let metrics: DaemonMetrics
        let health: ServiceHealth

        init(metrics: DaemonMetrics, health: ServiceHealth) {
            self.metrics = metrics
            self.health = health
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .head(let request) = unwrapInboundIn(data) else { return }
            let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
            let (status, type, body) = response(method: request.method, path: path)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: type)
            headers.add(name: "Content-Length", value: "\(body.count)")
            if status == .methodNotAllowed { headers.add(name: "Allow", value: "GET, HEAD") }
            let head = HTTPResponseHead(version: request.version, status: status, headers: headers)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            if request.method != .HEAD {
                context.write(
                    wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
            }
            if request.isKeepAlive {
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            } else {
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
            }
        }

        func response(method: HTTPMethod, path: String) -> (HTTPResponseStatus, String, [UInt8]) {
            guard ["/metrics", "/healthz", "/readyz"].contains(path) else {
                return (
                    .notFound, "text/plain; charset=utf-8", Array("not found: try /metrics, /healthz, /readyz\n".utf8)
                )
            }
            guard method == .GET || method == .HEAD else {
                return (.methodNotAllowed, "text/plain; charset=utf-8", Array("only GET\n".utf8))
            }
            switch path {
            case "/metrics":
                return (.ok, "text/plain; version=0.0.4; charset=utf-8", metrics.exposition())
            case "/healthz":
                let alive = health.isAlive
                return (
                    alive ? .ok : .serviceUnavailable, "text/plain; charset=utf-8",
                    Array((alive ? "ok\n" : "the poll loop is stuck\n").utf8)
                )
            default:
                let reason = health.notReadyReason()
                return (
                    reason == nil ? .ok : .serviceUnavailable, "text/plain; charset=utf-8",
                    Array("\(reason ?? "ready")\n".utf8)
                )
            }
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
