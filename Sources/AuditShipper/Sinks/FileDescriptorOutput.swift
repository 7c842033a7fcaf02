#if canImport(Glibc)
    import Glibc
#endif

/// A file descriptor such as stdout. A closed reader (EPIPE) is an error, never a silent loss.
public struct FileDescriptorOutput: ByteOutput {
    public let fd: Int32
    public let label: String

    public init(fd: Int32, label: String) {
        self.fd = fd
        self.label = label
    }

    public static let standardOutput = FileDescriptorOutput(fd: 1, label: "stdout")

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = POSIX.retrying { Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset) }
                if n >= 0 {
                    offset += n
                    continue
                }
                switch errno {
                case EAGAIN:
                    // A non-blocking descriptor whose reader is slow: wait until it drains.
                    var waiter = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&waiter, 1, 1000)
                case EPIPE:
                    throw SinkError.closed(sink: label, reason: "the reader went away (EPIPE)")
                default:
                    throw SinkError.writeFailed(sink: label, reason: POSIX.errnoText())
                }
            }
        }
    }
}
