import NIOCore
import NIOSSL

/// Syslog over RELP (rsyslog's Reliable Event Logging Protocol, `imrelp`), on a
/// `StreamTransport` connection: every message is a transaction the collector answers, and a
/// message counts as delivered only once its `200 OK` came back. Over plain TCP a write that
/// returned means only that the kernel took the bytes; what was in flight when the
/// connection broke is gone. Here it is known, and sent again.
///
/// A session starts with `open` (RELP version 0, the `syslog` command offered; a collector
/// that does not offer `syslog` is refused in words). Then at most `window` messages are
/// unanswered at once. A broken connection, an answer other than 200, a `serverclose`, or no
/// answer within `timeout` ends the session and fails the batch; the next batch opens a new
/// session (after the connection's backoff).
actor RELPTransport {
    let stream: StreamTransport
    let window: Int
    let timeout: Duration
    let label: String
    /// The connection whose session is open. Held, not identified by its address: a new
    /// connection may be allocated where a closed one was, and would pass for its session.
    var session: (any Channel)?
    /// The last transaction number used in the session (`open` is 1).
    var txnr = 0
    /// How many messages of the last `send` were written to the collector, answered or not.
    var lastWritten = 0

    init(
        host: String, port: Int, tls: NIOSSLContext?, serverName: String?, timeout: Duration, window: Int,
        label: String
    ) {
        stream = StreamTransport(
            host: host, port: port, tls: tls, serverName: serverName, timeout: timeout, label: label,
            protocolHandlers: { channel in
                try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RELPFrameDecoder()))
                try channel.pipeline.syncOperations.addHandler(RELPSessionHandler())
            })
        self.window = max(1, window)
        self.timeout = timeout
        self.label = label
    }

    /// Opens the session: refused, TLS, or a collector without `syslog` fail here, in words.
    func check() async throws { _ = try await opened() }

    /// Sends `messages` in order; `writing(range)` runs before those messages are written,
    /// `answered(i)` for each message the collector took (answered 200), in order, before the
    /// batch goes on. Throws at the first failure: the messages after the last one answered
    /// were not taken (some may have been, with the answer lost: only those can be sent twice).
    func send(
        _ messages: [[UInt8]], writing: (Range<Int>) throws -> Void = { _ in }, answered: (Int) throws -> Void
    ) async throws {
        lastWritten = 0
        let (channel, handler) = try await opened()
        var sent = 0
        var done = 0
        var answers: [EventLoopFuture<RELPFrame>] = []
        answers.reserveCapacity(messages.count)
        while done < messages.count {
            // Refill the window by halves: fewer, larger writes than one per answer.
            if sent < messages.count, sent - done <= window / 2 {
                let frames = (sent..<min(messages.count, done + window)).map {
                    RELPFrame(txnr: nextTXNR(), command: "syslog", data: messages[$0])
                }
                // Counted as written before the write: a write that fails may have reached the
                // collector in part.
                try writing(sent..<sent + frames.count)
                lastWritten = sent + frames.count
                answers += try await transact(frames, channel, handler)
                sent += frames.count
            }
            let answer = try await wait(for: answers[done], channel, handler)
            guard answer.status == 200 else {
                await end(channel, "the collector did not take a message: \(answer.statusText) (\(answer.status ?? 0))")
                throw SinkError.writeFailed(
                    sink: label, reason: "the collector did not take a message: \(answer.statusText)")
            }
            try answered(done)
            done += 1
        }
    }

    func close() async {
        session = nil
        await stream.close()
    }

    /// The connection with its session open: a new connection is opened first.
    func opened() async throws -> (any Channel, RELPSessionHandler) {
        var channel = try await stream.connection()
        var handler = try await channel.pipeline.handler(type: RELPSessionHandler.self).get()
        if let open = session, open === channel {
            let current = handler
            if try await channel.eventLoop.submit({ !current.hasEnded }).get() { return (channel, handler) }
            // Ended while idle (the collector's serverclose, its idle close): a new session at
            // once, not a failed batch.
            session = nil
            try? await channel.close()
            channel = try await stream.connection()
            handler = try await channel.pipeline.handler(type: RELPSessionHandler.self).get()
        }
        txnr = 0
        let offers =
            "relp_version=0\nrelp_software=openai-auditd,\(AuditShipperVersion.current),"
            + "https://platform.openai.com/docs/api-reference/audit-logs\ncommands=syslog"
        let open = RELPFrame(txnr: nextTXNR(), command: "open", data: Array(offers.utf8))
        // A plain syslog port takes the `open` as a message and says nothing.
        let answer = try await wait(
            for: try await transact([open], channel, handler)[0], channel, handler,
            silence: "the collector answered nothing to RELP's open within the timeout "
                + "(\(timeout.components.seconds)s): is this a RELP port (imrelp)?")
        guard answer.status == 200 else {
            let reason = "the collector refused the RELP session: \(answer.statusText)"
            await end(channel, reason)
            throw SinkError.closed(sink: label, reason: reason)
        }
        let commands = (answer.offers["commands"] ?? "").split(separator: ",").map(String.init)
        guard commands.contains("syslog") else {
            let reason =
                "the collector does not offer the RELP syslog command (it offers: \(commands.isEmpty ? "none" : commands.joined(separator: ", ")))"
            await end(channel, reason)
            throw SinkError.closed(sink: label, reason: reason)
        }
        session = channel
        return (channel, handler)
    }

    func nextTXNR() -> Int {
        txnr = txnr >= RELPFrame.maxTXNR ? 1 : txnr + 1
        return txnr
    }

    /// Writes `frames` in one buffer; their answers, in the same order.
    func transact(
        _ frames: [RELPFrame], _ channel: any Channel, _ handler: RELPSessionHandler
    ) async throws -> [EventLoopFuture<RELPFrame>] {
        let loop = channel.eventLoop
        let answers = try await loop.submit { frames.map { handler.expect($0.txnr, on: loop) } }.get()
        var buffer = channel.allocator.buffer(capacity: frames.reduce(0) { $0 + $1.data.count + 24 })
        for frame in frames { buffer.writeBytes(frame.bytes) }
        do {
            try await stream.write(buffer, on: channel)
        } catch {
            session = nil
            throw error
        }
        return answers
    }

    /// The answer, or a failure when none comes within `timeout` (the session is ended; the
    /// failure says `silence` if given).
    func wait(
        for answer: EventLoopFuture<RELPFrame>, _ channel: any Channel, _ handler: RELPSessionHandler,
        silence: String? = nil
    ) async throws -> RELPFrame {
        let seconds = timeout.components.seconds
        let timer = channel.eventLoop.scheduleTask(in: timeout.timeAmount) {
            handler.end(NoAnswer(seconds: seconds))
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        do {
            return try await answer.get()
        } catch let error as NoAnswer {
            await end(channel, silence ?? error.description)
            // Silence to the open: no RELP session to speak of; to a batch: the batch failed.
            if let silence { throw SinkError.closed(sink: label, reason: silence) }
            throw SinkError.writeFailed(sink: label, reason: error.description)
        } catch {
            let reason = TransportFailure.describe(error)
            await end(channel, reason)
            throw SinkError.writeFailed(sink: label, reason: reason)
        }
    }

    /// The session is over: the connection is dropped (and backed off, as any failure).
    func end(_ channel: any Channel, _ reason: String) async {
        session = nil
        await stream.fail(channel, reason)
    }

    struct NoAnswer: Error, CustomStringConvertible {
        let seconds: Int64
        var description: String {
            "the collector answered nothing within the timeout (\(seconds)s); the session is dropped"
        }
    }
}
