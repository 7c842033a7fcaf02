import Logging
import Prometheus
import Synchronization

/// Events as syslog messages to a collector: RFC 5424 (or 3164) lines carrying the event as
/// JSON, CEF or LEEF, over a unix socket, UDP, TCP, TLS or RELP (plain or TLS).
///
/// Over RELP each message is answered by the collector (`RELPTransport`); each answered one
/// is recorded in the sink's `ReceiptLog` at once, as the journal's are, so a batch cut by a
/// broken connection or `kill -9` sends again only what was not answered.
///
/// Over TCP and TLS nothing is cut: frames are octet-counted (RFC 6587 §3.4.1) or ended by a
/// newline. A datagram holds at most what the socket takes (about 64 KB over UDP, about 200 KB
/// on a local socket): an event over that is not cut but replaced by a small JSON record naming
/// it and its size, logged as an error and counted, so the collector knows it exists; use TCP
/// or TLS for such events.
public final class SyslogSink: Sink {
    enum Transport {
        case datagram(DatagramTransport)
        case stream(StreamTransport)
        case relp(RELPTransport)
    }

    public let name: String
    let settings: Configuration.SyslogSettings
    let origin: SyslogOrigin
    let transport: Transport
    let logger: Logger
    let metrics: DaemonMetrics?
    /// The messages a RELP collector answered since the position was last written.
    let receiptLog: ReceiptLog?
    /// Events written to a RELP session that ended before they were answered, or left in
    /// flight by a process that crashed (`ReceiptLog.inFlight`): counted as resent when they
    /// are written again.
    let unanswered = Mutex<Set<HashedID>>([])
    /// Whether the receipt log's events in flight were taken into `unanswered`: once, at the
    /// first cycle, as they are what an earlier process left.
    let recovered = Mutex(false)

    public init(
        settings: Configuration.SyslogSettings, name: String? = nil, logger: Logger, metrics: DaemonMetrics? = nil,
        receiptLog: ReceiptLog? = nil
    ) throws {
        self.settings = settings
        self.receiptLog = receiptLog
        self.logger = logger
        self.metrics = metrics
        self.name = name ?? Configuration.SinkSettings.syslog(settings).defaultName
        origin = SyslogOrigin(
            facility: settings.facility, hostname: settings.hostname ?? SyslogOrigin.localHostname(),
            enterpriseID: settings.enterpriseID, bom: settings.bom)
        switch settings.transport {
        case .unix(let path):
            transport = .datagram(DatagramTransport(.unix(path: path), timeout: settings.timeout, label: self.name))
        case .udp(let host, let port):
            transport = .datagram(
                DatagramTransport(.udp(host: host, port: port), timeout: settings.timeout, label: self.name))
        case .tcp(let host, let port):
            transport = .stream(
                StreamTransport(
                    host: host, port: port, tls: nil, serverName: nil, timeout: settings.timeout, label: self.name))
        case .tls(let host, let port):
            let context = try StreamTransport.tlsContext(
                caFile: settings.caFile, certFile: settings.certFile, keyFile: settings.keyFile)
            transport = .stream(
                StreamTransport(
                    host: host, port: port, tls: context, serverName: settings.serverName, timeout: settings.timeout,
                    label: self.name)
            )
        case .relp(let host, let port, let secure):
            let context =
                secure
                ? try StreamTransport.tlsContext(
                    caFile: settings.caFile, certFile: settings.certFile, keyFile: settings.keyFile) : nil
            transport = .relp(
                RELPTransport(
                    host: host, port: port, tls: context, serverName: settings.serverName, timeout: settings.timeout,
                    window: settings.window, label: self.name))
        }
    }

    public func receipts() async throws -> [Receipt] {
        guard let receiptLog else { return [] }
        guard case .relp = transport, !recovered.withLock({ $0 }) else { return try receiptLog.read() }
        let contents = try receiptLog.contents()
        unanswered.withLock { $0.formUnion(contents.inFlight.map(HashedID.init)) }
        recovered.withLock { $0 = true }
        return contents.receipts
    }

    public func positionRecorded() async throws { try receiptLog?.clear() }

    public func check() async throws {
        switch transport {
        case .datagram(let datagram): try datagram.check()
        case .stream(let stream): try await stream.check()
        case .relp(let relp): try await relp.check()
        }
    }

    public func deliver(_ batch: [AuditEvent]) async throws {
        let messages = batch.map { line(for: $0) }
        switch transport {
        case .datagram(let datagram):
            try datagram.send(messages) { index, bytes in self.tooLarge(batch[index], bytes: bytes) }
        case .stream(let stream):
            var frames: [UInt8] = []
            frames.reserveCapacity(messages.reduce(0) { $0 + $1.count + 8 })
            for message in messages {
                switch settings.framing {
                case .octetCounting:
                    frames.append(contentsOf: "\(message.count) ".utf8)
                    frames.append(contentsOf: message)
                case .newline:
                    frames.append(contentsOf: message)
                    frames.append(0x0A)
                }
            }
            try await stream.send(frames)
        case .relp(let relp):
            try await sendAnswered(messages, of: batch, over: relp)
        }
    }

    /// Each message answered is recorded at once; what is about to be written is noted first,
    /// and what was written but not answered when the session ended is remembered, so that
    /// its sending again is counted.
    func sendAnswered(_ messages: [[UInt8]], of batch: [AuditEvent], over relp: RELPTransport) async throws {
        let receiptLog = self.receiptLog
        var answered = 0
        // A receipt that cannot be written (a full disk) only narrows exactly-once to
        // at-most-one-batch.
        var unrecorded: StateError?
        do {
            try await relp.send(
                messages,
                writing: { range in
                    let resent = unanswered.withLock { held in
                        held.isEmpty ? 0 : batch[range].count { held.remove($0.hashedID) != nil }
                    }
                    if resent > 0 { metrics?.eventsResent(sink: name).increment(by: Int64(resent)) }
                    do throws(StateError) { try receiptLog?.recordWritten(batch[range]) } catch {
                        unrecorded = unrecorded ?? error
                    }
                },
                answered: { index in
                    answered = index + 1
                    do throws(StateError) { try receiptLog?.record(batch[index]) } catch {
                        unrecorded = unrecorded ?? error
                    }
                })
        } catch {
            let written = await relp.lastWritten
            let lost = batch[answered..<min(batch.count, max(answered, written))].map(\.hashedID)
            unanswered.withLock { $0.formUnion(lost) }
            throw error
        }
        if let unrecorded {
            logger.warning(
                "cannot record which events the collector answered; after a crash this batch may be sent again",
                metadata: ["sink": "\(name)", "error": "\(unrecorded)"])
        }
    }

    public func close() async {
        switch transport {
        case .stream(let stream): await stream.close()
        case .relp(let relp): await relp.close()
        case .datagram: break
        }
    }

    func line(for event: AuditEvent, payload: SyslogPayload? = nil) -> [UInt8] {
        let details = EventDetails(event)
        switch settings.lineProtocol {
        case .rfc5424:
            return SyslogFormats.rfc5424(event, details: details, origin: origin, payload: payload ?? settings.payload)
        case .rfc3164:
            return SyslogFormats.rfc3164(event, details: details, origin: origin, payload: payload ?? settings.payload)
        }
    }

    /// The record sent instead of an event too large for a datagram.
    func tooLarge(_ event: AuditEvent, bytes: Int) -> [UInt8] {
        metrics?.eventsOversized(sink: name).increment()
        logger.error(
            "event too large for a datagram syslog transport, sent as a record naming it; use tcp:// or tls://",
            metadata: ["event.id": "\(event.id)", "event.bytes": "\(bytes)", "sink": "\(name)"])
        let record =
            #"{"id":\#(JSONString.quoted(event.id)),"type":\#(JSONString.quoted(event.type)),"effective_at":\#(event.effectiveAt),"#
            + #""openai_auditd_error":"event of \#(bytes) bytes is too large for this datagram transport; use tcp:// or tls://"}"#
        let stub = AuditEvent.make(
            id: event.id, type: event.type, effectiveAt: event.effectiveAt, json: Array(record.utf8))
        return line(for: stub, payload: .json)
    }
}
