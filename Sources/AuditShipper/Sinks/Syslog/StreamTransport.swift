import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// Syslog over TCP or TLS on one kept-open connection, re-opened with backoff after a failure.
///
/// A batch is written in one buffer and counts only when the write completed. TLS always
/// verifies the certificate chain and the host name (`server_name`, else the URL's host).
actor StreamTransport {
    let host: String
    let port: Int
    let tls: NIOSSLContext?
    let serverName: String?
    /// Bounds connecting, the TLS handshake and every write (the sink's `timeout`).
    let timeout: Duration
    let label: String
    var channel: (any Channel)?
    /// What closed `channel`, if something did: a failed TLS handshake closes the channel and
    /// fails the pending write with "I/O on closed channel"; the operator needs the reason.
    var cause: FirstError?
    /// Why the last connection failed or ended, for the errors until the next attempt.
    var lastFailure = "the last attempt failed"
    var failures = 0
    var retryAt = ContinuousClock.now
    /// How soon a failed connection is tried again: the daemon's one backoff.
    let backoff = RetryPolicy(baseDelay: .seconds(1), maxDelay: .seconds(60))
    /// Handlers of a protocol spoken over the connection (RELP's), after TLS.
    let protocolHandlers: (@Sendable (any Channel) throws -> Void)?

    init(
        host: String, port: Int, tls: NIOSSLContext?, serverName: String?, timeout: Duration = .seconds(30),
        label: String, protocolHandlers: (@Sendable (any Channel) throws -> Void)? = nil
    ) {
        self.protocolHandlers = protocolHandlers
        self.timeout = timeout
        self.host = host
        self.port = port
        self.tls = tls
        self.serverName = serverName
        self.label = label
    }

    /// The TLS context for a `tls://` sink, from the configured files.
    static func tlsContext(caFile: String?, certFile: String?, keyFile: String?) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .fullVerification
        configuration.minimumTLSVersion = .tlsv12
        if let caFile { configuration.trustRoots = .file(caFile) }
        if let certFile, let keyFile {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certFile).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
        }
        return try NIOSSLContext(configuration: configuration)
    }

    func check() async throws {
        let channel = try await connection()
        // An empty write completes the TLS handshake: a wrong CA or name fails here, not later.
        try await write(channel.allocator.buffer(capacity: 0), on: channel)
    }

    func send(_ frames: [UInt8]) async throws {
        let channel = try await connection()
        try await write(channel.allocator.buffer(bytes: frames), on: channel)
    }

    /// Writes within `timeout`, or closes the connection: a collector that accepts and never
    /// reads (or never answers the ClientHello) fails the batch instead of holding the cycle,
    /// and shutdown, which waits for the batch in flight.
    func write(_ buffer: ByteBuffer, on channel: any Channel) async throws {
        let cause = self.cause
        let seconds = timeout.components.seconds
        let timer = channel.eventLoop.scheduleTask(in: timeout.timeAmount) {
            cause?.box.withLock { $0 = $0 ?? TimedOut(seconds: seconds) }
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        do {
            try await channel.writeAndFlush(buffer).get()
            failures = 0
        } catch {
            let reason = describe(cause?.error ?? error)
            fail(channel, reason)
            throw SinkError.writeFailed(sink: label, reason: reason)
        }
    }

    func connection() async throws -> any Channel {
        if let channel, channel.isActive { return channel }
        if let channel {
            if let error = cause?.error {
                fail(channel, "the connection ended: \(describe(error))")
            } else {
                // Closed cleanly while idle (a collector's or a load balancer's idle timeout):
                // connected again at once, not a failure to back off from.
                self.channel = nil
            }
        }
        let now = ContinuousClock.now
        guard now >= retryAt else {
            throw SinkError.closed(
                sink: label,
                reason: "not connected (\(lastFailure)); next attempt in \((retryAt - now).components.seconds + 1)s")
        }
        let tls = self.tls
        let protocolHandlers = self.protocolHandlers
        let cause = FirstError()
        let hostname = serverName ?? (Self.isAddress(host) ? nil : host)
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(timeout.timeAmount)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls, serverHostname: hostname))
                    }
                    try channel.pipeline.syncOperations.addHandler(cause)
                    try protocolHandlers?(channel)
                }
            }
        do {
            let channel = try await bootstrap.connect(host: host, port: port).get()
            self.channel = channel
            self.cause = cause
            return channel
        } catch {
            let reason = "cannot connect to \(host):\(port): \(describe(error))"
            backOff(reason)
            throw SinkError.closed(sink: label, reason: reason)
        }
    }

    func close() async {
        guard let channel else { return }
        self.channel = nil
        try? await channel.close()
    }

    func fail(_ channel: any Channel, _ reason: String) {
        channel.close(promise: nil)
        if self.channel === channel { self.channel = nil }
        backOff(reason)
    }

    /// No new connection before the backoff after this many failures in a row has passed.
    func backOff(_ reason: String) {
        lastFailure = reason
        failures += 1
        retryAt = .now + backoff.delay(afterAttempt: failures, retryAfter: nil)
    }

    struct TimedOut: Error, CustomStringConvertible {
        let seconds: Int64
        var description: String {
            "nothing was taken within the timeout (\(seconds)s): the collector does not read; the connection is dropped"
        }
    }

    /// Keeps the first error the pipeline reports (a TLS verification failure, a reset).
    final class FirstError: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let box = Mutex<(any Error)?>(nil)

        var error: (any Error)? { box.withLock { $0 } }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            box.withLock { $0 = $0 ?? error }
            context.fireErrorCaught(error)
        }
    }

    func describe(_ error: any Error) -> String { TransportFailure.describe(error) }

    static func isAddress(_ host: String) -> Bool {
        host.contains(":") || host.split(separator: ".").count == 4 && host.allSatisfy { $0.isNumber || $0 == "." }
    }
}
