import Foundation
import Logging
import NIOHTTP1
import Synchronization

/// Events to Splunk's HTTP Event Collector (`/services/collector/event`), one HEC object each
/// (`HECEnvelope`), in requests of at most `max_request_bytes`.
///
/// With indexer acknowledgement (`acknowledgements: true`) a 200 only means Splunk took the
/// request: each answer's `ackId` is noted in the sink's `ReceiptLog` (`recordAwaited`), and
/// `/services/collector/ack` is asked on the sink's channel (`HECChannel`) until Splunk says
/// the request is indexed; only then are its events receipts and `deliver` returns, so the
/// position moves only over what Splunk indexed. Splunk forgets an ack once it has answered
/// `true`, so the receipts are written the moment it does. A request Splunk does not confirm
/// within `ack_timeout` (an indexer lost it) is sent again. After `kill -9` the next process
/// asks about the noted requests before it sends anything (`receipts`): those indexed are not
/// sent again. What is sent again after an unknown outcome is counted as resent.
///
/// Without acknowledgement a 200 is delivery (at least once).
public final class SplunkHECSink: Sink {
    public let name: String
    let settings: Configuration.SplunkHECSettings
    let client: HTTPSinkClient
    let token: AdminKey
    let channel: String
    let envelope: HECEnvelope
    let receiptLog: ReceiptLog?
    let logger: Logger
    let metrics: DaemonMetrics?
    let retrying: HTTPSinkRetry
    /// Requests sent and not yet confirmed: what a crashed process left (read at the first
    /// cycle) and what a failed batch left, asked about before anything new is sent.
    let awaited = Mutex<[ReceiptLog.Awaited]>([])
    /// Events whose last sending may have reached Splunk: counted as resent when sent again.
    let unanswered = Mutex<Set<HashedID>>([])
    let recovered = Mutex(false)
    /// Requests whose ack id Splunk gave again to a later request (it restarted and counts
    /// from 0 on the channel again): their own answer can no longer be asked, so they count
    /// as lost and are sent again, never as indexed on the later request's word.
    let superseded = Mutex<[ReceiptLog.Awaited]>([])
    /// Times a batch's unconfirmed requests are sent again before the batch fails.
    static let rounds = 3

    public init(
        settings: Configuration.SplunkHECSettings, name: String? = nil, token: AdminKey, channelPath: String?,
        receiptLog: ReceiptLog?, logger: Logger, metrics: DaemonMetrics? = nil, heartbeat: Heartbeat? = nil,
        retry: RetryPolicy = RetryPolicy()
    ) throws {
        self.settings = settings
        self.name = name ?? Configuration.SinkSettings.splunkHEC(settings).defaultName
        self.token = token
        self.receiptLog = receiptLog
        self.logger = logger
        self.metrics = metrics
        retrying = HTTPSinkRetry(sink: self.name, policy: retry, heartbeat: heartbeat, logger: logger)
        envelope = HECEnvelope(settings: settings, host: settings.host ?? SyslogOrigin.localHostname())
        channel = try HECChannel.load(path: channelPath)
        client = try HTTPSinkClient(settings: settings.http, secret: token)
        metrics?.acksPending(sink: self.name).set(Double(0))
    }

    var headers: HTTPHeaders {
        var headers = HTTPHeaders()
        headers.add(name: "Authorization", value: "Splunk \(token.value)")
        // Only with acknowledgements: a token that wants them then says so (code 10).
        if settings.acknowledgements { headers.add(name: "X-Splunk-Request-Channel", value: channel) }
        return headers
    }

    func failure(_ reason: String) -> SinkError { .writeFailed(sink: name, reason: token.redact(reason)) }

    // MARK: check

    /// HEC's health, then the token (an empty post: Splunk checks the token before it finds
    /// no data), then whether acknowledgement is on for the token when it is on here.
    public func check() async throws {
        let health = try await exchange(.GET, "/services/collector/health", body: nil)
        guard (200..<300).contains(health.status) else {
            throw SinkError.closed(sink: name, reason: reason(health))
        }
        let probe = try await exchange(.POST, "/services/collector/event", body: [])
        let code = HECReply(probe.body).code
        if probe.status == 401 || probe.status == 403 || code == 10 || probe.status == 404 {
            throw SinkError.closed(sink: name, reason: reason(probe))
        }
        guard code != nil else { throw SinkError.closed(sink: name, reason: notHEC(probe)) }
        guard settings.acknowledgements else { return }
        let acks = try await exchange(.POST, ackPath, body: Array(#"{"acks":[]}"#.utf8))
        if HECReply(acks.body).code == 14 || acks.status == 401 || acks.status == 403 {
            throw SinkError.closed(sink: name, reason: reason(acks))
        }
    }

    func reason(_ response: HTTPSinkClient.Response) -> String {
        token.redact(
            HECReply(response.body).reason(status: response.status, acknowledgements: settings.acknowledgements))
    }

    func notHEC(_ response: HTTPSinkClient.Response) -> String {
        "the answer is not HEC's (HTTP \(response.status): \(response.text.prefix(200))); is the URL Splunk's HEC port?"
    }

    var ackPath: String { "/services/collector/ack?channel=\(channel)" }

    /// One request, no retry; a transport failure as the sink's.
    func exchange(_ method: HTTPMethod, _ path: String, body: [UInt8]?) async throws -> HTTPSinkClient.Response {
        do {
            return try await client.send(method, path, headers: headers, body: body)
        } catch {
            throw SinkError.closed(sink: name, reason: error.reason)
        }
    }

    // MARK: receipts

    /// At the first cycle, what the last process noted; then every request still awaited is
    /// asked about (waiting for it up to `ack_timeout` after it was sent): those indexed are
    /// receipts, the others are sent again.
    public func receipts() async throws -> [Receipt] {
        guard let receiptLog else { return [] }
        if !recovered.withLock({ $0 }) {
            let contents = try receiptLog.contents()
            // An ack id noted twice was given again by a Splunk that restarted: only the later
            // request can be asked about; the earlier one's events are not receipts, so the
            // cycle sends them again.
            var latest: [Int: ReceiptLog.Awaited] = [:]
            for request in contents.awaited { latest[request.ack] = request }
            awaited.withLock { $0.append(contentsOf: latest.values.sorted { $0.sentAt < $1.sentAt }) }
            unanswered.withLock { $0.formUnion(contents.inFlight.map(HashedID.init)) }
            recovered.withLock { $0 = true }
        }
        // What a failed batch left superseded is not a receipt: the cycle sends it again.
        superseded.withLock { $0.removeAll() }
        // Acknowledgements turned off since: nothing can be asked, so what was awaited is sent again.
        if !settings.acknowledgements {
            let dropped = awaited.withLock { list in
                defer { list.removeAll() }
                return list
            }
            unanswered.withLock { $0.formUnion(dropped.flatMap { $0.events.map { HashedID($0.id) } }) }
        }
        let waiting = awaited.withLock { $0.map(\.ack) }
        if !waiting.isEmpty {
            let lost = try await confirm(Set(waiting))
            if !lost.isEmpty {
                logger.warning(
                    "Splunk did not acknowledge requests sent before; their events are sent again",
                    metadata: ["sink": "\(name)", "sink.events": "\(lost.reduce(0) { $0 + $1.events.count })"])
            }
        }
        return try receiptLog.read()
    }

    public func positionRecorded() async throws { try receiptLog?.clear() }

    // MARK: deliver

    public func deliver(_ batch: [AuditEvent]) async throws {
        var pending = batch[...]
        for round in 1...Self.rounds {
            var acks: Set<Int> = []
            let requests = HTTPSinkRetry.requests(
                pending, maxBytes: settings.http.maxRequestBytes, size: envelope.size(of:))
            for request in requests {
                acks.formUnion(try await post(request))
            }
            guard settings.acknowledgements, !acks.isEmpty else { return }
            let lost =
                try await confirm(acks)
                + superseded.withLock { list in
                    defer { list.removeAll() }
                    return list
                }
            guard !lost.isEmpty else { return }
            let ids = Set(lost.flatMap { $0.events.map(\.id) })
            pending = batch.filter { ids.contains($0.id) }[...]
            unanswered.withLock { $0.formUnion(pending.map(\.hashedID)) }
            logger.warning(
                "Splunk did not acknowledge a request within ack_timeout (an indexer may have lost it); sending its events again",
                metadata: ["sink": "\(name)", "sink.events": "\(pending.count)", "sink.round": "\(round)"])
        }
        throw failure(
            "Splunk did not acknowledge \(pending.count) events within ack_timeout in \(Self.rounds) tries; "
                + "is an indexer down? (they are sent again at the next poll)")
    }

    /// Posts `events` as one request (in halves when Splunk finds it too large), retrying
    /// what got no answer or a busy one; the ack ids Splunk gave, each noted with its events.
    func post(_ events: ArraySlice<AuditEvent>) async throws -> Set<Int> {
        var body: [UInt8] = []
        body.reserveCapacity(events.reduce(0) { $0 + envelope.size(of: $1) })
        for event in events { envelope.append(event, to: &body) }
        let resent = unanswered.withLock { held in held.isEmpty ? 0 : events.count { held.remove($0.hashedID) != nil } }
        if resent > 0 { metrics?.eventsResent(sink: name).increment(by: Int64(resent)) }
        try receiptLog?.recordWritten(events)
        var attempt = 0
        while true {
            attempt += 1
            let response: HTTPSinkClient.Response
            do {
                response = try await client.send(.POST, "/services/collector/event", headers: headers, body: body)
            } catch {
                guard !error.untrusted, attempt < HTTPSinkRetry.attempts else { throw failure(error.reason) }
                // Whether Splunk took it is unknown: this sending may repeat it.
                metrics?.eventsResent(sink: name).increment(by: Int64(events.count))
                try await retrying.pause(attempt, "no answer from Splunk", error.reason)
                continue
            }
            let reply = HECReply(response.body)
            switch response.status {
            case 200..<300:
                // Only HEC's own success is one: a 200 from something else in the way (a load
                // balancer's page) took nothing, and counting it would lose the events.
                guard reply.code == 0 else { throw failure(notHEC(response)) }
                guard settings.acknowledgements else { return [] }
                guard let ack = reply.ackId else {
                    // Splunk took them and will never confirm: they are receipts, so the
                    // next poll does not send them again, and the sink fails with why.
                    try receiptLog?.record(events.map { Receipt(id: $0.id, effectiveAt: $0.effectiveAt) })
                    throw failure(HECReply(text: nil, code: 14).reason(status: 200, acknowledgements: true))
                }
                let sentAt = Daemon.now()
                try receiptLog?.recordAwaited(ack: ack, sentAt: sentAt, events: events)
                let request = ReceiptLog.Awaited(
                    ack: ack, sentAt: sentAt, events: events.map { Receipt(id: $0.id, effectiveAt: $0.effectiveAt) })
                let displaced = awaited.withLock { list in
                    let displaced = list.filter { $0.ack == ack }
                    list.removeAll { $0.ack == ack }
                    list.append(request)
                    return displaced
                }
                if !displaced.isEmpty {
                    logger.warning(
                        "Splunk gave an ack id it had given an earlier request (did it restart?); that request's events are sent again",
                        metadata: ["sink": "\(name)", "sink.ack_id": "\(ack)"])
                    superseded.withLock { $0 += displaced }
                }
                metrics?.acksPending(sink: name).set(Double(awaited.withLock { $0.count }))
                return [ack]
            case 413 where events.count > 1:
                let middle = events.startIndex + events.count / 2
                return try await post(events[..<middle]).union(try await post(events[middle...]))
            case 413:
                throw failure(
                    "event \(events.first!.id) (\(body.count) bytes as a HEC object) is larger than Splunk accepts (max_content_length)"
                )
            case let status where (status == 429 || status >= 500) && attempt < HTTPSinkRetry.attempts:
                // Busy (503, code 9) took nothing; any other 5xx may have taken it.
                if response.status != 503 {
                    metrics?.eventsResent(sink: name).increment(by: Int64(events.count))
                }
                try await retrying.pause(
                    attempt, after: response, "Splunk refused the request for now", reason(response))
            default:
                throw failure(reason(response))
            }
        }
    }

    // MARK: acknowledgements

    /// Asks about `acks` (all in `awaited`) until each is indexed, or `ack_timeout` has
    /// passed since it was sent; receipts are written as soon as Splunk says so. Returns the
    /// ones not confirmed in time (no longer awaited). Throws at once, leaving what is
    /// unanswered awaited for the next cycle, when Splunk cannot be asked: waiting on it here
    /// would hold back every other sink, and only Splunk's own answer can say "not indexed".
    func confirm(_ acks: Set<Int>) async throws -> [ReceiptLog.Awaited] {
        var left = acks
        var lost: [ReceiptLog.Awaited] = []
        var interval = Duration.milliseconds(100)
        let timeout = settings.ackTimeout.components.seconds
        while !left.isEmpty {
            let ids = Array(left).sorted()
            do {
                let states = try await query(ids)
                let confirmed = Set(ids.filter { states[String($0)] == true })
                if !confirmed.isEmpty {
                    let done = awaited.withLock { list in
                        let done = list.filter { confirmed.contains($0.ack) }
                        list.removeAll { confirmed.contains($0.ack) }
                        return done
                    }
                    do throws(StateError) { try receiptLog?.record(done.flatMap(\.events)) } catch {
                        logger.warning(
                            "cannot record which events Splunk indexed; after a crash they may be sent again",
                            metadata: ["sink": "\(name)", "error": "\(error)"])
                    }
                    left.subtract(confirmed)
                }
            } catch SinkError.closed(_, let reason) {
                metrics?.acksPending(sink: name).set(Double(awaited.withLock { $0.count }))
                throw failure(
                    "cannot ask Splunk whether it indexed \(left.count) requests: \(reason) (asked again at the next poll)"
                )
            }
            let now = Daemon.now()
            let expired = awaited.withLock { list in
                let expired = list.filter { left.contains($0.ack) && now >= $0.sentAt + timeout }
                list.removeAll { entry in expired.contains { $0.ack == entry.ack } }
                return expired
            }
            metrics?.acksPending(sink: name).set(Double(awaited.withLock { $0.count }))
            lost += expired
            left.subtract(expired.map(\.ack))
            guard !left.isEmpty else { break }
            try await retrying.policy.sleep(interval, beating: retrying.heartbeat)
            interval = min(interval * 2, .seconds(2))
        }
        return lost
    }

    /// `/services/collector/ack` for `ids`: each one's state, true once indexed.
    func query(_ ids: [Int]) async throws -> [String: Bool] {
        let body = Array(#"{"acks":[\#(ids.map(String.init).joined(separator: ","))]}"#.utf8)
        let response = try await exchange(.POST, ackPath, body: body)
        guard (200..<300).contains(response.status) else {
            let reply = HECReply(response.body)
            // A refusal that no asking again changes ends the batch at once.
            if reply.code == 14 || response.status == 401 || response.status == 403 {
                throw failure(reason(response))
            }
            throw SinkError.closed(sink: name, reason: reason(response))
        }
        return HECReply(response.body).acks ?? [:]
    }

    public func close() async { await client.close() }
}
