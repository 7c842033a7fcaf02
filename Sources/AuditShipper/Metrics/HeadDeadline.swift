import NIOCore
import NIOHTTP1

/// Closes a connection whose request head is not complete within `limit` of its opening or of
/// the last response: a total deadline, which bytes trickling in do not reset (an idle timer
/// does). Between the HTTP decoder and the responder; tells `connections` when it waits.
final class HeadDeadline: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let limit: TimeAmount
    let connections: MetricsConnections
    var timer: Scheduled<Void>?

    init(limit: TimeAmount, connections: MetricsConnections) {
        self.limit = limit
        self.connections = connections
    }

    func handlerAdded(context: ChannelHandlerContext) { arm(context) }

    func handlerRemoved(context: ChannelHandlerContext) { timer?.cancel() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) {
            timer?.cancel()
            timer = nil
            connections.waiting(context.channel, false)
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            arm(context)
            connections.waiting(context.channel, true)
        }
        context.write(data, promise: promise)
    }

    func arm(_ context: ChannelHandlerContext) {
        timer?.cancel()
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: limit) { channel.close(promise: nil) }
    }
}
