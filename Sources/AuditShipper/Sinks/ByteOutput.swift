/// Where a line-oriented sink writes: a file descriptor in production, a recorder in tests.
public protocol ByteOutput: Sendable {
    /// Writes every byte or throws; partial writes are retried, never dropped.
    func write(_ bytes: [UInt8]) throws
}
