#if canImport(Glibc)
    import Glibc
#endif

/// One event per line on standard output (or any injected `ByteOutput`).
///
/// A batch is written with as few `write` calls as the descriptor allows, so a reader never
/// sees a line cut by another writer, and the batch is delivered once `write` returned.
public struct StdoutSink: Sink {
    public let format: EventFormat
    /// JSON lines carry what the detection rules found (`annotate: true`).
    let annotate: Bool
    let output: any ByteOutput
    /// Hostname, facility and the like for `rfc5424` lines.
    let origin: SyslogOrigin
    public let name: String

    public init(
        name: String = "stdout", format: EventFormat = .json, annotate: Bool = false,
        output: any ByteOutput = FileDescriptorOutput.standardOutput, origin: SyslogOrigin = SyslogOrigin()
    ) {
        self.name = name
        self.format = format
        self.annotate = annotate
        self.output = output
        self.origin = origin
    }

    public func check() async throws {
        if let descriptor = output as? FileDescriptorOutput, fcntl(descriptor.fd, F_GETFL) < 0 {
            throw SinkError.closed(sink: name, reason: "file descriptor \(descriptor.fd) is not open")
        }
    }

    public func deliver(_ batch: [AuditEvent]) async throws {
        try output.write(format.lines(batch, origin: origin, annotated: annotate))
    }
}
