// The socket types (SOCK_DGRAM, SOCK_CLOEXEC as glibc's enum) reach Swift here through
// libsystemd's headers, which include <sys/socket.h>; it compiled without this import only
// while another file of the same compile job had it.
import CSystemd

#if canImport(Glibc)
    import Glibc
#endif

/// Syslog over datagrams: a unix socket such as `/dev/log`, or UDP. One message per datagram;
/// a message larger than the socket takes fails with `.tooLarge`, never cut.
final class DatagramTransport: Sendable {
    enum Destination: Sendable {
        case unix(path: String)
        case udp(host: String, port: Int)
    }

    enum Failure: Error {
        case tooLarge(bytes: Int)
    }

    let destination: Destination
    /// How long one send may block on a receiver that does not take it (`SO_SNDTIMEO`).
    let timeout: Duration
    let label: String

    init(_ destination: Destination, timeout: Duration = .seconds(30), label: String) {
        self.destination = destination
        self.timeout = timeout
        self.label = label
    }

    /// Opens a socket, sends each message, closes: a datagram socket holds no state worth keeping,
    /// and a fresh one follows a listener that was restarted.
    /// `oversized(index, bytes)` gives what to send instead of a message that does not fit.
    func send(_ messages: [[UInt8]], oversized: (Int, Int) -> [UInt8]) throws {
        let fd = try open()
        defer { close(fd) }
        for (index, message) in messages.enumerated() {
            do {
                try send(message, on: fd)
            } catch Failure.tooLarge(let bytes) {
                try send(oversized(index, bytes), on: fd)
            }
        }
    }

    func check() throws {
        close(try open())
    }

    /// A connected socket whose sends give up after `timeout`.
    func open() throws -> Int32 {
        let fd = try connect()
        var limit = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        guard setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size)) == 0 else {
            let failure = error("setsockopt SO_SNDTIMEO")
            close(fd)
            throw failure
        }
        return fd
    }

    func connect() throws -> Int32 {
        switch destination {
        case .unix(let path):
            let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw error("socket") }
            guard POSIX.connect(fd, unixPath: path) == 0 else {
                if errno == ENAMETOOLONG {
                    close(fd)
                    throw SinkError.closed(sink: label, reason: "the socket path \(path) is too long")
                }
                let failure = error("connect to \(path)")
                close(fd)
                throw failure
            }
            return fd
        case .udp(let host, let port):
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
            var result: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(host, String(port), &hints, &result)
            guard status == 0, let first = result else {
                throw SinkError.closed(
                    sink: label, reason: "cannot resolve \(host): \(String(cString: gai_strerror(status)))")
            }
            defer { freeaddrinfo(result) }
            let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw error("socket") }
            guard Glibc.connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
                let failure = error("connect to \(host):\(port)")
                close(fd)
                throw failure
            }
            return fd
        }
    }

    func send(_ message: [UInt8], on fd: Int32) throws {
        let sent = POSIX.retrying {
            message.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        if sent == message.count { return }
        if sent < 0 && (errno == EMSGSIZE || errno == ENOBUFS && message.count > 65_000) {
            throw Failure.tooLarge(bytes: message.count)
        }
        throw error("send")
    }

    func error(_ what: String) -> SinkError {
        let text = POSIX.errnoText()
        switch errno {
        case ENOENT, ECONNREFUSED, ENOTCONN, EPIPE:
            return .closed(sink: label, reason: "\(what): \(text)")
        case EAGAIN:
            return .writeFailed(
                sink: label,
                reason: "\(what): the receiver took nothing within the timeout (\(timeout.components.seconds)s)")
        default:
            return .writeFailed(sink: label, reason: "\(what): \(text)")
        }
    }
}
