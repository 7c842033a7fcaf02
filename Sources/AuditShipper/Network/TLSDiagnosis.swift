import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// Which reason a certificate that did not verify has: BoringSSL says only "certificate
/// verify failed", and an operator needs to know whether to renew a certificate or to set
/// `api.tls.ca_file`. A second handshake, which takes the certificates the server offers and
/// then fails on purpose (nothing is sent over it), lets them be looked at: validity first,
/// as it is the usual cause; else the issuer is not among the trust roots.
enum TLSDiagnosis {
    /// The reason in words, or nil when the server cannot be reached again or offers none.
    static func reason(host: String, port: Int, caFile: String?, now: Date = Date()) async -> String? {
        guard let chain = await offeredChain(host: host, port: port, caFile: caFile), let leaf = chain.first else {
            return nil
        }
        let seconds = time_t(now.timeIntervalSince1970)
        func date(_ time: time_t) -> String { TimeSpec.format(Int64(time)) }
        if seconds > leaf.notValidAfter { return "its certificate expired on \(date(leaf.notValidAfter))" }
        if seconds < leaf.notValidBefore { return "its certificate is not valid until \(date(leaf.notValidBefore))" }
        for (index, certificate) in chain.enumerated().dropFirst() where seconds > certificate.notValidAfter {
            return
                "certificate \(index + 1) of the \(chain.count) it sent expired on \(date(certificate.notValidAfter))"
        }
        // Valid in time: the chain does not lead to a trust root (NIOSSL does not show the
        // issuer's name to say which).
        if chain.count == 1 {
            return "its certificate is self-signed or issued by a CA that is not among the trust roots"
        }
        return "its certificate is issued by a CA that is not among the trust roots"
    }

    /// The certificates the server at `host:port` offers, leaf first, within five seconds.
    static func offeredChain(host: String, port: Int, caFile: String?) async -> [NIOSSLCertificate]? {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile { tls.trustRoots = .file(caFile) }
        guard let context = try? NIOSSLContext(configuration: tls) else { return nil }
        let offered = Mutex<[NIOSSLCertificate]?>(nil)
        let serverName = host.isIPAddress ? nil : host
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = try NIOSSLClientHandler(
                        context: context, serverHostname: serverName,
                        customVerificationCallback: { certificates, promise in
                            offered.withLock { $0 = certificates }
                            promise.succeed(.failed)
                        })
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        guard let channel = try? await bootstrap.connect(host: host, port: port).get() else { return nil }
        // The handshake fails at the verification above and the channel closes; a server that
        // never answers is given up on.
        let giveUp = channel.eventLoop.scheduleTask(in: .seconds(5)) { channel.close(promise: nil) }
        try? await channel.closeFuture.get()
        giveUp.cancel()
        return offered.withLock { $0 }
    }
}

extension String {
    fileprivate var isIPAddress: Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, self, &v4) == 1 || inet_pton(AF_INET6, self, &v6) == 1
    }
}
