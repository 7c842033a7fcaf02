import AsyncHTTPClient
import AuditSimulator
import Foundation
import NIOCore
import Testing

/// The simulator keeps API.md's semantics, since every other test trusts it.
@Suite struct SimulatorTests {
    let simulator = AuditSimulator(trickyRate: 0)

    func list(_ query: String, now: Double = Date().timeIntervalSince1970) throws -> EventStore.Page {
        try simulator.store.list(ListQuery.parse(query), now: now)
    }

    @Test func listsNewestFirstAndWalksWithAfterAndBefore() throws {
        let ids = simulator.addEvents(count: 5, from: 100, to: 104, types: ["user.added"])
        let first = try list("limit=2")
        #expect(first.items.map(\.id) == [ids[4], ids[3]])
        #expect(first.hasMore)
        let second = try list("limit=2&after=\(ids[3])")
        #expect(second.items.map(\.id) == [ids[2], ids[1]])
        let last = try list("limit=2&after=\(ids[1])")
        #expect(last.items.map(\.id) == [ids[0]])
        #expect(!last.hasMore)
        let back = try list("limit=2&before=\(ids[1])")
        #expect(back.items.map(\.id) == [ids[3], ids[2]])
    }

    @Test func appliesEveryFilterAndTheTimeRange() throws {
        simulator.addEvents(count: 40, from: 100, to: 139, types: ["api_key.created", "login.failed"])
        simulator.addEvents(count: 4, from: 120, types: ["tenant.user.added"])
        #expect(try list("limit=100").items.count == 40)
        #expect(try list("limit=100&tenant_only=true").items.count == 4)
        #expect(try list("limit=100&event_types%5B%5D=login.failed").items.allSatisfy { $0.type == "login.failed" })
        let range = try list("limit=100&effective_at%5Bgte%5D=110&effective_at%5Blt%5D=120").items
        #expect(range.count == 10 && range.allSatisfy { (110..<120).contains($0.effectiveAt) })
        let bounds = try list("limit=100&effective_at%5Bgt%5D=110&effective_at%5Blte%5D=120").items
        #expect(bounds.count == 10 && bounds.allSatisfy { (111...120).contains($0.effectiveAt) })
        let sample = try #require(range.first)
        if let email = sample.actorEmail {
            let query = "limit=100&actor_emails%5B%5D=\(email.replacingOccurrences(of: "@", with: "%40"))"
            #expect(try list(query).items.allSatisfy { $0.actorEmail == email })
        }
        if let project = sample.projectID {
            #expect(try list("limit=100&project_ids%5B%5D=\(project)").items.allSatisfy { $0.projectID == project })
        }
        let actor = try #require(sample.actorIDs.first)
        #expect(try list("limit=100&actor_ids%5B%5D=\(actor)").items.allSatisfy { $0.actorIDs.contains(actor) })
        let keyEvent = try #require(range.first { $0.type == "api_key.created" })
        let resource = try #require(keyEvent.resourceID)
        #expect(try list("limit=100&resource_ids%5B%5D=\(resource)").items.map(\.id) == [keyEvent.id])
    }

    @Test func hidesLateEventsUntilTheyBecomeVisible() throws {
        simulator.addEvents(count: 3, from: 100, types: ["user.added"], visibleAfter: 3600)
        let now = Date().timeIntervalSince1970
        #expect(try list("limit=10", now: now).items.isEmpty)
        #expect(try list("limit=10", now: now + 3601).items.count == 3)
    }

    @Test(arguments: [
        ("limit=0", "Expected a value between 1 and 100"), ("limit=101", "Expected a value between 1 and 100"),
        ("order=asc", "Unrecognized request argument supplied: order"),
        ("event_types%5B%5D=nope", "'nope' is not a known event type"),
        ("effective_at%5Bgte%5D=soon", "expected an integer"), ("after=audit_log-missing", "no audit log with id"),
    ])
    func refusesWhatTheAPIRefuses(query: String, message: String) {
        #expect {
            try list(query)
        } throws: { error in
            (error as? APIFailure)?.status == 400 && (error as? APIFailure)?.message.contains(message) == true
        }
    }

    @Test func generatesAll145TypesAsValidJSONWithTrickyAndLargeContent() throws {
        #expect(EventGenerator.types.count == 145)
        var generator = EventGenerator(seed: 7, trickyRate: 1)
        for type in EventGenerator.types {
            let event = generator.make(type: type, at: 100)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(event.json)) as? [String: Any])
            #expect(object["type"] as? String == type)
            #expect(event.isTenant == SimulatedEvent.isTenantType(type))
        }
        let tricky = String(decoding: generator.make(type: "project.created", at: 1, tricky: true).json, as: UTF8.self)
        #expect(tricky.contains(#"\""#) || tricky.contains(#"\\"#) || tricky.contains("\\n") || tricky.contains("é"))
        let large = generator.make(type: "project.created", at: 1, large: true)
        #expect(large.json.count > 100_000)
        #expect(try JSONSerialization.jsonObject(with: Data(large.json)) is [String: Any])
    }

    @Test func theControlInterfaceAddsEventsAndFaultsOverHTTP() async throws {
        try await simulator.start()
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        func post(_ path: String, _ body: String) async throws -> (Int, String) {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(simulator.port)\(path)")
            request.method = .POST
            request.body = .bytes(ByteBuffer(string: body))
            let response = try await http.execute(request, timeout: .seconds(5))
            let data = try await response.body.collect(upTo: 1 << 20)
            return (Int(response.status.code), String(buffer: data))
        }
        let (status, reply) = try await post("/_sim/events", #"{"count": 3, "from": 100, "type": "login.failed"}"#)
        #expect(status == 200 && reply.contains(#""added":3"#))
        let raw = #"[{"id":"audit_log-raw1","type":"brand.new_type","effective_at":150,"extra":{"a":[1,null]}}]"#
        #expect(try await post("/_sim/events/raw", raw).0 == 200)
        #expect(simulator.store.count == 4)
        #expect(
            try await post("/_sim/faults", #"{"kind": "status", "status": 429, "retry_after": "2", "count": 2}"#).0
                == 200)
        #expect(simulator.faults.pending == 2)
        #expect(try await post("/_sim/faults", #"{"kind": "explode"}"#).0 == 400)
        #expect(try await post("/_sim/reset", "").0 == 200)
        #expect(simulator.store.count == 0 && simulator.faults.pending == 0)
        try await http.shutdown()
        try await simulator.stop()
    }
}
