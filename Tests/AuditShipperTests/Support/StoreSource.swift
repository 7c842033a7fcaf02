import AuditShipper
import AuditSimulator
import Foundation
import Synchronization

/// An `AuditLogSource` reading the simulator's store in-process: the real query string and
/// page bytes, without HTTP. `failures` makes chosen requests fail.
final class StoreSource: AuditLogSource {
    let simulator: AuditSimulator
    let queries = Mutex<[AuditLogQuery]>([])
    /// Called with the request number (1-based); a thrown error fails that request.
    let failure: Mutex<(@Sendable (Int) throws -> Void)?> = Mutex(nil)
    /// The server's clock its pages report (the `Date` header); nil sends none.
    let serverTime = Mutex<Int64?>(nil)

    init(_ simulator: AuditSimulator) { self.simulator = simulator }

    var requestCount: Int { queries.withLock { $0.count } }

    func page(_ query: AuditLogQuery) async throws -> AuditPage { try pageSynchronously(query) }

    /// `page`, for a `ScriptedSource` that rewrites what the store lists.
    func pageSynchronously(_ query: AuditLogQuery) throws -> AuditPage {
        let number = queries.withLock {
            $0.append(query)
            return $0.count
        }
        try failure.withLock { $0 }?(number)
        if query.tenantOnly, simulator.rejectTenantOnly.withLock({ $0 }) {
            throw UpstreamError.badRequest(status: 400, message: "Unrecognized request argument supplied: tenant_only")
        }
        let listed = try simulator.store.list(ListQuery.parse(query.queryString), now: Date().timeIntervalSince1970)
        var page = try PageScanner.scan(EventStore.body(listed))
        page.serverTime = serverTime.withLock { $0 }
        return page
    }
}

/// A sink that keeps what it was given, and fails on demand.
final class RecordingSink: Sink {
    let name: String
    let batches = Mutex<[[AuditEvent]]>([])
    /// Fails every delivery and check while set (a collector that is down); `failAfter` lets
    /// that many more batches through first.
    let failing = Mutex(false)
    let failAfter = Mutex<Int?>(nil)
    /// With receipts: the destination takes events one by one and the sink can tell which
    /// (like the journal); `failAfterEvents` cuts a batch after that many events.
    let keepsReceipts: Bool
    let receiptsSinceRecord = Mutex<[Receipt]>([])
    let failAfterEvents = Mutex<Int?>(nil)

    init(name: String = "recording", keepsReceipts: Bool = false) {
        self.name = name
        self.keepsReceipts = keepsReceipts
    }

    func check() async throws {
        if failing.withLock({ $0 }) { throw SinkError.closed(sink: name, reason: "told to be down") }
    }

    func receipts() async throws -> [Receipt] { receiptsSinceRecord.withLock { $0 } }

    func positionRecorded() async throws { receiptsSinceRecord.withLock { $0 = [] } }

    func deliver(_ batch: [AuditEvent]) async throws {
        if keepsReceipts, let cut = failAfterEvents.withLock({ $0 }), cut < batch.count {
            let taken = Array(batch.prefix(cut))
            batches.withLock { $0.append(taken) }
            receiptsSinceRecord.withLock { $0 += taken.map { Receipt(id: $0.id, effectiveAt: $0.effectiveAt) } }
            throw SinkError.writeFailed(sink: name, reason: "cut after \(cut) events")
        }
        let fail = failAfter.withLock { remaining -> Bool in
            guard let left = remaining else { return false }
            if left == 0 { return true }
            remaining = left - 1
            return false
        }
        if fail || failing.withLock({ $0 }) {
            throw SinkError.writeFailed(sink: name, reason: "told to fail")
        }
        batches.withLock { $0.append(batch) }
        if keepsReceipts {
            receiptsSinceRecord.withLock { $0 += batch.map { Receipt(id: $0.id, effectiveAt: $0.effectiveAt) } }
        }
    }

    var events: [AuditEvent] { batches.withLock { $0.flatMap { $0 } } }
    var ids: [String] { events.map(\.id) }
}

/// A fresh directory under /tmp, removed by the caller's `defer`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "auditd-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// A shared, lockable value for closures that must be `@Sendable`.
final class Locked<Value: Sendable>: Sendable {
    let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout sending Value) throws -> sending R) rethrows -> R {
        try mutex.withLock(body)
    }
}

extension AuditState {
    /// The position of the tests' recording sink (named "recording"); a fresh one before it has any.
    var recording: SinkPosition { position("recording") }

    func position(_ name: String) -> SinkPosition { positions[name] ?? SinkPosition(start: startAt) }
}

/// A source whose pages a test writes: for upstreams that lie.
final class ScriptedSource: AuditLogSource {
    let answer: @Sendable (AuditLogQuery) throws -> AuditPage
    let requests = Mutex(0)

    init(_ answer: @escaping @Sendable (AuditLogQuery) throws -> AuditPage) { self.answer = answer }

    func page(_ query: AuditLogQuery) async throws -> AuditPage {
        requests.withLock { $0 += 1 }
        return try answer(query)
    }
}
