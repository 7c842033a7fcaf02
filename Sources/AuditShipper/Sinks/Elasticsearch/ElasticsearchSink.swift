import Foundation
import Logging
import NIOHTTP1
import Synchronization

/// Events to Elasticsearch or OpenSearch through `_bulk`: one `create` action per event with
/// the event's id as the document's `_id` (`BulkBody`), in requests of at most
/// `max_request_bytes`, to `url` or each of `urls` in turn.
///
/// The index itself is the receipt: a `create` of an id it holds is answered 409
/// (`version_conflict_engine_exception`), which counts as delivered. So a batch sent again,
/// after a crash or a failed request, costs a 409 per event and never a second document, and
/// the sink needs no record of its own. The answer is read item by item: 201 (or 200) is
/// delivered; 429 and 5xx items are sent again, alone; any other (a mapping that rejects the
/// event, 400) either fails the sink naming the event, holding its position (`on_rejected:
/// hold`), or sets the event aside in the dead-letter file beside the state and goes on
/// (`dead_letter`). A whole request refused for now (429, 5xx, no answer) is retried with
/// `RetryPolicy`'s delays, on the next URL when there are several; one too large (413) is
/// sent in halves.
public final class ElasticsearchSink: Sink {
    /// How the sink proves who it is.
    public enum Credential: Sendable {
        case apiKey(AdminKey)
        case basic(username: String, password: AdminKey)
    }

    public let name: String
    let settings: Configuration.ElasticsearchSettings
    /// One per URL, tried in turn from `current`.
    let clients: [HTTPSinkClient]
    let current = Mutex(0)
    let authorization: String?
    let secret: AdminKey?
    let body: BulkBody
    let deadLetters: DeadLetterFile
    let logger: Logger
    let metrics: DaemonMetrics?
    let retrying: HTTPSinkRetry

    public init(
        settings: Configuration.ElasticsearchSettings, name: String? = nil, credential: Credential?,
        deadLetters: DeadLetterFile, logger: Logger, metrics: DaemonMetrics? = nil, heartbeat: Heartbeat? = nil,
        retry: RetryPolicy = RetryPolicy()
    ) throws {
        self.settings = settings
        self.name = name ?? Configuration.SinkSettings.elasticsearch(settings).defaultName
        self.deadLetters = deadLetters
        self.logger = logger
        self.metrics = metrics
        retrying = HTTPSinkRetry(sink: self.name, policy: retry, heartbeat: heartbeat, logger: logger)
        switch credential {
        case .apiKey(let key):
            authorization = "ApiKey \(key.value)"
            secret = key
        case .basic(let username, let password):
            authorization = "Basic " + Data("\(username):\(password.value)".utf8).base64EncodedString()
            secret = password
        case nil:
            authorization = nil
            secret = nil
        }
        body = BulkBody(index: settings.index)
        clients = try settings.urls.map { url in
            var http = settings.http
            http.url = url
            return try HTTPSinkClient(settings: http, secret: credential.map(\.secret))
        }
    }

    var headers: HTTPHeaders {
        var headers = HTTPHeaders()
        if let authorization { headers.add(name: "Authorization", value: authorization) }
        return headers
    }

    func failure(_ reason: String) -> SinkError { .writeFailed(sink: name, reason: redact(reason)) }

    func redact(_ text: String) -> String { secret?.redact(text) ?? text }

    /// The client to use now, and moving on to the next URL after it failed.
    var client: HTTPSinkClient { clients[current.withLock { $0 }] }

    func next() { current.withLock { $0 = ($0 + 1) % clients.count } }

    // MARK: check

    /// `GET /` on each URL in turn until one answers with its version; names what is wrong.
    /// A refusal of the credentials is the same at every URL and ends the check at once.
    public func check() async throws {
        var reasons: [String] = []
        for _ in clients {
            let client = self.client
            do {
                let response = try await client.send(.GET, "/", headers: headers)
                let reason = redact(BulkReply.reason(status: response.status, body: response.body))
                if response.status >= 500 {
                    reasons.append("\(client.settings.url): \(reason)")
                    next()
                    continue
                }
                guard (200..<300).contains(response.status) else { throw SinkError.closed(sink: name, reason: reason) }
                struct Root: Decodable {
                    struct Version: Decodable {
                        var number: String?
                        var distribution: String?
                    }
                    var version: Version?
                }
                let root = try? JSONDecoder().decode(Root.self, from: Data(response.body))
                logger.debug(
                    "Elasticsearch answers",
                    metadata: [
                        "sink": "\(name)", "sink.url": "\(client.settings.url)",
                        "elasticsearch.version": "\(root?.version?.number ?? "unknown")",
                        "elasticsearch.distribution": "\(root?.version?.distribution ?? "elasticsearch")",
                    ])
                return
            } catch let error as HTTPSinkClient.Failure {
                reasons.append(error.reason)
                next()
            }
        }
        throw SinkError.closed(sink: name, reason: reasons.joined(separator: "; "))
    }

    // MARK: deliver

    public func deliver(_ batch: [AuditEvent]) async throws {
        var pending = batch[...]
        var rejected: [(event: AuditEvent, reason: String)] = []
        var round = 0
        while !pending.isEmpty {
            round += 1
            var again: [AuditEvent] = []
            var lastRefusal = ""
            let requests = HTTPSinkRetry.requests(
                pending, maxBytes: settings.http.maxRequestBytes, size: body.size(of:))
            for request in requests {
                for (event, status, reason) in try await bulk(request) {
                    switch status {
                    case 200, 201, 409: continue
                    case 429, 500...599:
                        again.append(event)
                        lastRefusal = reason
                    default: rejected.append((event, reason))
                    }
                }
            }
            guard !again.isEmpty else { break }
            guard round < HTTPSinkRetry.attempts else {
                throw failure(
                    "Elasticsearch refused \(again.count) events for now \(HTTPSinkRetry.attempts) times (last: \(lastRefusal)); they are sent again at the next poll"
                )
            }
            // Sent again alone: the others of the batch are in the index. (Not counted as
            // resent: the index said it did not take them.)
            try await retrying.pause(round, "Elasticsearch refused some events for now", lastRefusal)
            pending = again[...]
        }
        guard let first = rejected.first else { return }
        switch settings.onRejected {
        case .hold:
            let more = rejected.count > 1 ? " (and \(rejected.count - 1) more)" : ""
            throw failure(
                "Elasticsearch rejected event \(first.event.id): \(first.reason)\(more); the position holds until it is fixed (or set on_rejected: dead_letter)"
            )
        case .deadLetter:
            for (event, reason) in rejected {
                let item = UnreadableItem(
                    index: 0, id: event.id, reason: "rejected by \(name): \(reason)", json: event.json)
                if try deadLetters.setAside(item, now: Daemon.now()) { metrics?.deadLetters.increment() }
                logger.error(
                    "Elasticsearch rejected an event; it is set aside in the dead-letter file and the sink goes on",
                    metadata: ["sink": "\(name)", "event.id": "\(event.id)", "error": "\(reason)"])
            }
        }
    }

    var bulkPath: String {
        var path = "/_bulk?filter_path=errors,items.*.status,items.*.error"
        if let pipeline = settings.pipeline {
            path += "&pipeline=" + (pipeline.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? pipeline)
        }
        return path
    }

    /// One request for `events` (in halves when too large), retried while the whole of it is
    /// refused for now; each event's status and, when not delivered, why.
    func bulk(_ events: ArraySlice<AuditEvent>) async throws -> [(AuditEvent, Int, String)] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(events.reduce(0) { $0 + body.size(of: $1) })
        for event in events { body.append(event, to: &bytes) }
        var headers = self.headers
        headers.add(name: "Content-Type", value: "application/x-ndjson")
        var attempt = 0
        while true {
            attempt += 1
            let response: HTTPSinkClient.Response
            do {
                response = try await client.send(.POST, bulkPath, headers: headers, body: bytes)
            } catch {
                guard !error.untrusted, attempt < HTTPSinkRetry.attempts else { throw failure(error.reason) }
                next()
                try await retrying.pause(attempt, "no answer from Elasticsearch", redact(error.reason))
                continue
            }
            switch response.status {
            case 200..<300:
                guard let reply = BulkReply.decode(response.body), let items = reply.items, items.count == events.count
                else {
                    throw failure(
                        "Elasticsearch's answer to _bulk is not one item per event: \(String(decoding: response.body.prefix(300), as: UTF8.self))"
                    )
                }
                return zip(events, items).map { event, item in
                    let status = item.result?.status ?? 0
                    return (event, status, item.result?.error.map { "HTTP \(status): \($0.words)" } ?? "HTTP \(status)")
                }
            case 413 where events.count > 1:
                let middle = events.startIndex + events.count / 2
                return try await bulk(events[..<middle]) + bulk(events[middle...])
            case 413:
                return [(events.first!, 413, BulkReply.reason(status: 413, body: response.body))]
            case let status where (status == 429 || status >= 500) && attempt < HTTPSinkRetry.attempts:
                if status >= 500 { next() }
                try await retrying.pause(
                    attempt, after: response, "Elasticsearch refused the request for now",
                    redact(BulkReply.reason(status: response.status, body: response.body)))
            default:
                throw failure(BulkReply.reason(status: response.status, body: response.body))
            }
        }
    }

    public func close() async {
        for client in clients { await client.close() }
    }
}

extension ElasticsearchSink.Credential {
    var secret: AdminKey {
        switch self {
        case .apiKey(let key): key
        case .basic(_, let password): password
        }
    }
}
