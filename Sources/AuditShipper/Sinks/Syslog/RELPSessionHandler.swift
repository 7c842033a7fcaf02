import NIOCore

/// Hands the collector's answers to the transactions waiting for them. It lives on its
/// channel's event loop and is touched only there (`expect` is called through the loop).
final class RELPSessionHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = RELPFrame

    /// Transactions sent and not answered yet, by number.
    private var waiting: [Int: EventLoopPromise<RELPFrame>] = [:]
    /// Why the session ended, once it has: every later `expect` fails with it.
    private var ended: (any Error)?

    struct ServerClose: Error, CustomStringConvertible {
        var description: String { "the collector ended the session (serverclose)" }
    }

    struct Closed: Error, CustomStringConvertible {
        var description: String { "the collector closed the connection" }
    }

    /// The session ended (a `serverclose`, the connection closed): no answer can come.
    var hasEnded: Bool { ended != nil }

    /// The answer to transaction `txnr`, when it comes; fails when the session ends first.
    func expect(_ txnr: Int, on eventLoop: any EventLoop) -> EventLoopFuture<RELPFrame> {
        eventLoop.preconditionInEventLoop()
        if let ended { return eventLoop.makeFailedFuture(ended) }
        let promise = eventLoop.makePromise(of: RELPFrame.self)
        waiting[txnr] = promise
        return promise.futureResult
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.command {
        case "rsp": waiting.removeValue(forKey: frame.txnr)?.succeed(frame)
        case "serverclose":
            end(ServerClose())
            context.close(promise: nil)
        default: break  // nothing else is sent to a client
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        end(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        end(Closed())
        context.fireChannelInactive()
    }

    /// Ends the session with `error` (the first reason stays): every waiting answer fails.
    func end(_ error: any Error) {
        let reason = ended ?? error
        ended = reason
        let promises = waiting.values
        waiting = [:]
        for promise in promises { promise.fail(reason) }
    }
}
