import NIOSSL

/// A network failure in an operator's words, for the API client and the syslog streams
/// alike: a TLS failure says so (a certificate that does not verify, a host name that does
/// not match), anything else is its own description.
enum TransportFailure {
    static func describe(_ error: any Error) -> String {
        switch error {
        case let ssl as NIOSSLError: "TLS: \(ssl)"
        case let ssl as BoringSSLError: "TLS: \(ssl)"
        default: "\(error)"
        }
    }
}
