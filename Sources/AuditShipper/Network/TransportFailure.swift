import AsyncHTTPClient
import NIOCore
import NIOPosix
import NIOSSL

#if canImport(Glibc)
    import Glibc
#endif

/// A network failure in an operator's words, for the API client and the syslog streams
/// alike: what a TLS failure means (a certificate that does not verify, a host name that does
/// not match, a peer that does not speak TLS), a refused connection as the system says it.
/// Never a library's type name, nor the build path BoringSSL puts in its error text.
enum TransportFailure {
    /// Why the peer is not to be trusted, when that is the failure: its certificate does not
    /// verify against the trust roots, or does not name the host (`host`, when NIOSSL does not
    /// say it: it names an IP address, which gets no SNI, `<none>`). No retry changes that.
    static func untrusted(_ error: any Error, host: String? = nil) -> String? {
        switch error {
        case let extra as NIOSSLExtraError where extra == .failedToValidateHostname:
            // NIOSSL's own text is "…: Couldn't find NAME in certificate from peer".
            let text = "\(extra)"
            if let start = text.range(of: "find "), let end = text.range(of: " in certificate") {
                let name = String(text[start.upperBound..<end.lowerBound])
                if name != "<none>" { return "its certificate does not name \(name)" }
                if let host { return "its certificate does not name \(host)" }
            }
            return "its certificate does not name the host connected to"
        default:
            guard failedVerification(error) else { return nil }
            return
                "its certificate does not verify against the trust roots (expired or not yet valid, self-signed, "
                + "or issued by a CA that is not among them)"
        }
    }

    /// The certificate chain did not verify (BoringSSL's `CERTIFICATE_VERIFY_FAILED`, which
    /// names no reason: `TLSDiagnosis` finds it).
    static func failedVerification(_ error: any Error) -> Bool {
        switch error {
        case let ssl as NIOSSLError:
            guard case .handshakeFailed(let boring) = ssl else { return false }
            return failedVerification(boring)
        case let boring as BoringSSLError: return reasons(boring).contains("CERTIFICATE_VERIFY_FAILED")
        default: return false
        }
    }

    static func describe(_ error: any Error) -> String {
        if let reason = untrusted(error) { return "TLS: \(reason)" }
        switch error {
        case let ssl as NIOSSLError:
            switch ssl {
            case .handshakeFailed(let boring): return "TLS: the handshake failed (\(words(boring)))"
            case .uncleanShutdown: return "TLS: the peer closed the connection without ending TLS"
            default: return "TLS: \(ssl)"
            }
        case let boring as BoringSSLError: return "TLS: \(words(boring))"
        case let extra as NIOSSLExtraError: return "TLS: \(extra)".replacingAll("NIOSSLExtraError.", with: "")
        case let connection as NIOConnectionError:
            let causes = connection.connectionErrors.map { describe($0.error) }
            let reason =
                causes.isEmpty ? "no address to connect to" : Array(Set(causes)).sorted().joined(separator: "; ")
            return "cannot connect to \(connection.host):\(connection.port): \(reason)"
        case let io as IOError: return POSIX.errnoText(io.errnoCode).lowercased()
        case let http as HTTPClientError: return describe(http)
        case let channel as ChannelError:
            if case .connectTimeout = channel { return "no connection within the connect timeout" }
            return "the connection failed (\(channel))"
        default: return "\(error)"
        }
    }

    /// AsyncHTTPClient's errors that a loaded network produces, in words.
    static func describe(_ error: HTTPClientError) -> String {
        switch error {
        case .connectTimeout: "no connection within the connect timeout"
        case .readTimeout, .deadlineExceeded: "no answer within api.request_timeout"
        case .remoteConnectionClosed: "the server closed the connection before it answered"
        case .cancelled: "the request was cancelled"
        case .socksHandshakeTimeout, .httpProxyHandshakeTimeout, .tlsHandshakeTimeout:
            "the handshake took longer than the connect timeout"
        default: "\(error)".replacingAll("HTTPClientError.", with: "")
        }
    }

    /// The reason names in BoringSSL's error stack (`CERTIFICATE_VERIFY_FAILED`, ...), read
    /// from its text, which also carries the library's source path: that part is dropped.
    static func reasons(_ error: BoringSSLError) -> [String] {
        "\(error)".split(separator: "OPENSSL_internal:").dropFirst().map { rest in
            String(rest.prefix { $0.isUppercase || $0.isNumber || $0 == "_" })
        }.filter { !$0.isEmpty }
    }

    /// `CERTIFICATE_VERIFY_FAILED` as "certificate verify failed"; the error's kind when the
    /// stack names no reason.
    static func words(_ error: BoringSSLError) -> String {
        let names = reasons(error)
        guard !names.isEmpty else {
            switch error {
            case .zeroReturn, .syscallError: return "the connection ended"
            default: return "no reason given"
            }
        }
        return names.map { $0.lowercased().replacingAll("_", with: " ") }.joined(separator: ", ")
    }
}
