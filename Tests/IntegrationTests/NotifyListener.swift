import Foundation
import Synchronization

/// A fake systemd: a unix datagram socket that records what `sd_notify` sends, with times.
final class NotifyListener: Sendable {
    let path: String
    let fd: Int32
    let messages = Mutex<[(at: ContinuousClock.Instant, text: String)]>([])
    let running = Mutex(true)

    init(directory: String) throws {
        path = directory + "/notify.sock"
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0 else { throw HarnessError("bind \(path): \(errno)") }
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while running.withLock({ $0 }) {
                let count = recv(fd, &buffer, buffer.count, 0)
                guard count > 0 else { continue }
                let text = String(decoding: buffer[0..<count], as: UTF8.self)
                messages.withLock { $0.append((.now, text)) }
            }
            close(fd)
        }
    }

    func stop() { running.withLock { $0 = false } }

    /// Every `NAME=value` line received, in order.
    var lines: [String] { messages.withLock { $0.flatMap { $0.text.split(separator: "\n").map(String.init) } } }

    func times(of line: String) -> [ContinuousClock.Instant] {
        messages.withLock { $0.filter { $0.text.split(separator: "\n").contains(Substring(line)) }.map(\.at) }
    }
}
