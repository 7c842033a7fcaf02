// http-exchange-bench MODE BASE_URL PATHS_FILE: fetches each path of PATHS_FILE (one per line,
// such as `/v1/organization/audit_logs?limit=100&after=...`) from BASE_URL's host in turn and
// throws the bodies away, so that `make bench` can time the HTTP exchange alone, without the
// page reader, the cycle, the sinks or the state (scripts/bench.sh; docs/benchmark.md):
//   ahc  the daemon's own client (`APIClient.makeHTTPClient`, bodies gathered on the event
//        loop that runs the task, as `APIClient` does);
//   nio  a bare SwiftNIO HTTP/1.1 exchange: a connection per request (as the benchmark's
//        Python server closes each one), the codec and one handler, every step on one event
//        loop: the least any client built on SwiftNIO can spend on the same exchanges.
// Prints the requests and bytes received to standard error. Not installed.

import AsyncHTTPClient
import AuditShipper
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("http-exchange-bench: \(message)\n".utf8))
    exit(64)
}

/// What every exchange sends.
struct Exchange: Sendable {
    let host: String
    let port: Int
    let paths: [String]
    let authorization: String
    let loop: any EventLoop

    /// Requests `paths[index...]` one after another over bare SwiftNIO; the bytes received.
    @Sendable func bare(from index: Int, total: Int) -> EventLoopFuture<Int> {
        guard index < paths.count else { return loop.makeSucceededFuture(total) }
        let done = loop.makePromise(of: Int.self)
        return ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(BodyCollector(done: done))
                }
            }
            .connect(host: host, port: port)
            .flatMap { channel in
                var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: paths[index])
                head.headers.add(name: "Host", value: "\(host):\(port)")
                head.headers.add(name: "Authorization", value: authorization)
                head.headers.add(name: "Accept", value: "application/json")
                channel.write(HTTPClientRequestPart.head(head), promise: nil)
                channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
                return done.futureResult
            }
            .flatMap { bare(from: index + 1, total: total + $0) }
    }

    /// Requests every path with the daemon's client, on the loop, as `APIClient` does.
    func daemonClient(baseURL: String) async throws -> Int {
        let http = APIClient.makeHTTPClient(connectTimeout: .seconds(10))
        defer { _ = http.shutdown() }
        return try await withTaskExecutorPreference(EventLoopExecutor(eventLoop: loop)) {
            var total = 0
            for path in paths {
                var headers = HTTPHeaders()
                headers.add(name: "Authorization", value: authorization)
                headers.add(name: "Accept", value: "application/json")
                let request = try HTTPClient.Request(url: baseURL + path, method: .GET, headers: headers)
                let response = try await http.execute(
                    request: request, delegate: ResponseAccumulator(request: request),
                    eventLoop: .delegateAndChannel(on: loop), deadline: .now() + .seconds(30)
                ).futureResult.get()
                guard response.status == .ok else { fail("\(path): \(response.status)") }
                total += response.body?.readableBytes ?? 0
            }
            return total
        }
    }
}

/// Gathers one response's body and closes the connection at its end.
final class BodyCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    let done: EventLoopPromise<Int>
    var bytes = 0
    var status: UInt = 0
    /// The promise is completed once: the close after `.end` also reports the channel inactive.
    var finished = false
    init(done: EventLoopPromise<Int>) { self.done = done }

    func finish(_ result: Result<Int, any Error>) {
        guard !finished else { return }
        finished = true
        done.completeWith(result)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): status = head.status.code
        case .body(let buffer): bytes += buffer.readableBytes
        case .end:
            finish(status == 200 ? .success(bytes) : .failure(ChannelError.inappropriateOperationForState))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) { finish(.failure(ChannelError.eof)) }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failure(error))
        context.close(promise: nil)
    }
}

@main
enum HTTPExchangeBench {
    static func main() async {
        let arguments = CommandLine.arguments
        guard arguments.count == 4, ["ahc", "nio"].contains(arguments[1]) else {
            fail("usage: http-exchange-bench ahc|nio BASE_URL PATHS_FILE")
        }
        let mode = arguments[1]
        guard let base = URLComponents(string: arguments[2]), base.scheme == "http", let host = base.host else {
            fail("BASE_URL must be http://host:port (no TLS: this measures the exchange itself)")
        }
        guard let list = try? String(contentsOfFile: arguments[3], encoding: .utf8) else {
            fail("cannot read \(arguments[3])")
        }
        let exchange = Exchange(
            host: host, port: base.port ?? 80, paths: list.split(separator: "\n").map(String.init),
            authorization: "Bearer \(ProcessInfo.processInfo.environment["OPENAI_ADMIN_KEY"] ?? "")",
            loop: MultiThreadedEventLoopGroup.singleton.next())
        let bytes: Int
        do {
            bytes =
                mode == "nio"
                ? try await exchange.loop.flatSubmit { exchange.bare(from: 0, total: 0) }.get()
                : try await exchange.daemonClient(baseURL: arguments[2])
        } catch {
            fail("\(error)")
        }
        FileHandle.standardError.write(
            Data("http-exchange-bench \(mode): \(exchange.paths.count) requests, \(bytes) bytes\n".utf8))
    }
}
