import AuditSimulator
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Two hosts, one trail, against a real PostgreSQL and a real rsyslog: two daemons (members)
/// for one organization, each with its own file (local) and one TCP collector they share.
@Suite(.serialized) struct CoordinationTests {
    static let now = Int64(Date().timeIntervalSince1970)
    static let lease: Int64 = 4

    /// One member: its own directory, state and file; its syslog lines carry its name as
    /// hostname, so the collector tells who sent what.
    struct Member {
        let name: String
        let directory: String
        var configPath: String { directory + "/config.yaml" }
        var filePath: String { directory + "/audit.json" }

        init(_ name: String, harness: DaemonHarness, postgres: PostgresHarness, rsyslog: RsyslogHarness, start: Int64)
            throws
        {
            self.name = name
            directory = harness.directory + "/" + name
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let yaml = """
                api:
                  base_url: \(harness.simulator.baseURL)
                poll:
                  interval: 1s
                  start_at: \(start)
                  max_window_events: 1000
                state:
                  path: \(directory)/state.json
                coordination:
                  type: postgres
                  url: \(postgres.url)
                  password_file: \(postgres.passwordFile)
                  lease: \(CoordinationTests.lease)s
                sinks:
                  - type: file
                    path: \(filePath)
                    fsync: false
                  - type: syslog
                    name: siem
                    url: tcp://127.0.0.1:\(rsyslog.tcpPort)
                    hostname: \(name)
                """
            try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        }

        /// The ids in its file, in order.
        func fileIDs() -> [String] {
            guard let data = FileManager.default.contents(atPath: filePath) else { return [] }
            return data.split(separator: UInt8(ascii: "\n")).compactMap {
                (try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any])?["id"] as? String
            }
        }
    }

    static func with(
        _ body: (DaemonHarness, PostgresHarness, RsyslogHarness) async throws -> Void
    ) async throws {
        let postgres = try PostgresHarness()
        let rsyslog: RsyslogHarness
        do {
            try await postgres.start()
            rsyslog = try await RsyslogHarness.started()
        } catch {
            await postgres.close()
            throw error
        }
        do {
            try await DaemonHarness.with { harness in try await body(harness, postgres, rsyslog) }
        } catch {
            await rsyslog.close()
            await postgres.close()
            throw error
        }
        await rsyslog.close()
        await postgres.close()
    }

    /// The event ids the collector received from `member`.
    static func received(_ rsyslog: RsyslogHarness, from member: String) -> [String] {
        rsyslog.messages(hostname: member).compactMap { message in
            guard let msg = message["msg"] as? String,
                let event = try? JSONSerialization.jsonObject(with: Data(msg.utf8)) as? [String: Any]
            else { return nil }
            return event["id"] as? String
        }
    }

    /// The daemons' log lines holding `text`.
    static func lines(_ stderr: String, containing text: String) -> [Substring] {
        stderr.split(separator: "\n").filter { $0.contains(text) }
    }

    /// The daemons' log lines stamped after `instant`.
    static func lines(_ stderr: String, after instant: Date) -> String {
        stderr.split(separator: "\n").filter { (loggedAt($0) ?? .distantPast) > instant }.joined(separator: "\n")
    }

    /// When the daemon wrote `line` (its first word, ISO 8601 with milliseconds).
    static func loggedAt(_ line: Substring) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return line.split(separator: " ", maxSplits: 1).first.flatMap { formatter.date(from: String($0)) }
    }

    static func all(_ rsyslog: RsyslogHarness) -> [String] {
        received(rsyslog, from: "member-a") + received(rsyslog, from: "member-b")
    }

    /// `count` events over three days behind slow pages (a catch-up that lasts), member-a
    /// started and delivering to the collector, then member-b started beside it.
    static func twoMembers(
        _ harness: DaemonHarness, _ postgres: PostgresHarness, _ rsyslog: RsyslogHarness, count: Int,
        slowPages milliseconds: Int = 40
    ) async throws -> (a: Member, b: Member, first: Process, second: Process) {
        let start = Self.now - 3 * 86_400
        harness.simulator.addEvents(
            count: count, from: start, to: Self.now - 60, types: EventGenerator.organizationTypes)
        harness.simulator.faults.enqueue(.slow(milliseconds: milliseconds), count: 100_000)
        let a = try Member("member-a", harness: harness, postgres: postgres, rsyslog: rsyslog, start: start)
        let b = try Member("member-b", harness: harness, postgres: postgres, rsyslog: rsyslog, start: start)
        let first = try harness.launch(["run", "--config", a.configPath])
        try await harness.waitFor("member-a leads and delivers", timeout: .seconds(60)) {
            Self.received(rsyslog, from: "member-a").count >= 500
        }
        let second = try harness.launch(["run", "--config", b.configPath])
        return (a, b, first, second)
    }

    @Test func killNineOfTheLeaderMidCatchUpHandsOverWithinTheLeaseAndEveryEventArrivesOnce() async throws {
        try await Self.with { harness, postgres, rsyslog in
            let count = 12_000
            // Pages of 60 ms and the kill at 2,000: with 40 ms and 3,000, member-a once finished
            // the whole catch-up before the test, slowed by make test's load, saw 3,000 arrive,
            // and member-b had nothing left to deliver.
            let (a, b, first, second) = try await Self.twoMembers(
                harness, postgres, rsyslog, count: count, slowPages: 60)
            try await harness.waitFor("2000 events at the collector", timeout: .seconds(120)) {
                Self.all(rsyslog).count >= 2000
            }
            #expect(Self.all(rsyslog).count < count, "the kill lands during member-a's catch-up")
            #expect(Self.received(rsyslog, from: "member-b").isEmpty, "the standby sent nothing to the collector")
            let taken = { harness.stderr.components(separatedBy: "holds the group's lease now").count - 1 }
            #expect(taken() == 1, "member-a took the lease once, member-b not at all")
            let killedAt = Date()
            let killed = ContinuousClock.now
            kill(first.processIdentifier, SIGKILL)
            _ = try await DaemonHarness.wait(first, timeout: .seconds(10))
            try await harness.waitFor("member-b takes the lease", timeout: .seconds(90)) { taken() == 2 }
            // By member-b's own log line: when the test, sharing two loaded cores with the
            // daemons, PostgreSQL and rsyslog, gets round to noticing is not the handover.
            let line = try #require(Self.lines(harness.stderr, containing: "holds the group's lease now").last)
            let leased = Duration.seconds(try #require(Self.loggedAt(line)).timeIntervalSince(killedAt))
            try await harness.waitFor("member-b delivers to the collector", timeout: .seconds(90)) {
                !Self.received(rsyslog, from: "member-b").isEmpty
            }
            let handover = ContinuousClock.now - killed
            print(
                "coordination: member-b took the lease \(leased) and delivered to the collector \(handover) after member-a's kill -9 (lease \(Self.lease)s, poll 1s)"
            )
            // member-b is still catching up its own file when member-a dies: it asks for the
            // lease apart from its cycle, which ends at the slice in hand when it has it. The
            // lease plus two polls, and 6 s for make test's load on two cores (4.3 to 7.5 s
            // seen in all); the first delivery follows the first slice read, given 10 s more.
            #expect(
                leased < .seconds(Self.lease + 2 + 6),
                "took \(leased); member-b said after the kill: \(Self.lines(harness.stderr, after: killedAt))")
            #expect(handover < .seconds(Self.lease + 2 + 16), "took \(handover)")
            harness.simulator.faults.removeAll()
            try await harness.waitFor("every event at the collector", timeout: .seconds(180)) {
                Set(Self.all(rsyslog)).count >= count
            }
            // member-a back: a standby now, it catches its own file up.
            let again = try harness.launch(["run", "--config", a.configPath])
            try await harness.waitFor("member-a's file complete", timeout: .seconds(180)) {
                a.fileIDs().count >= count
            }
            try await harness.waitFor("member-b's file complete", timeout: .seconds(60)) {
                b.fileIDs().count >= count
            }
            try await Task.sleep(for: .seconds(2))
            for process in [again, second] {
                kill(process.processIdentifier, SIGTERM)
                #expect(try await DaemonHarness.wait(process, timeout: .seconds(30)) == 0)
            }
            let collected = Self.all(rsyslog)
            #expect(Set(collected).count == count, "nothing missing at the collector")
            #expect(collected.count - count <= 1000, "at most the batch in flight again, for the one failover")
            for member in [a, b] {
                let ids = member.fileIDs()
                #expect(ids.count == count && Set(ids).count == count, "\(member.name)'s file holds each event once")
            }
            // Both members name the same holder.
            let shows = try await Self.shows(harness, [a, b])
            #expect(shows[0].holder == shows[1].holder && !shows[0].holder.isEmpty, "\(shows)")
            #expect(shows[0].text.contains("shared sink siem (the group's position):"), "\(shows[0].text)")
        }
    }

    @Test func aLeaderFrozenPastItsLeaseIsFencedAndSendsNoMoreThanTheBatchItWasIn() async throws {
        try await Self.with { harness, postgres, rsyslog in
            let count = 10_000
            let (a, b, first, second) = try await Self.twoMembers(harness, postgres, rsyslog, count: count)
            try await Task.sleep(for: .seconds(2))
            kill(first.processIdentifier, SIGSTOP)
            try await harness.waitFor("member-b takes over", timeout: .seconds(90)) {
                !Self.received(rsyslog, from: "member-b").isEmpty
            }
            let beforeResume = Self.received(rsyslog, from: "member-a").count
            kill(first.processIdentifier, SIGCONT)
            harness.simulator.faults.removeAll()
            try await harness.waitFor("every event at the collector", timeout: .seconds(180)) {
                Set(Self.all(rsyslog)).count >= count
            }
            try await harness.waitFor("member-a's file complete", timeout: .seconds(120)) {
                a.fileIDs().count >= count
            }
            try await Task.sleep(for: .seconds(2))
            let afterResume = Self.received(rsyslog, from: "member-a").count - beforeResume
            print("coordination: member-a sent \(afterResume) events to the collector after it was resumed")
            #expect(afterResume <= 1000, "the resumed member sent no more than the batch it was in")
            #expect(harness.stderr.contains("lost the group's lease") || harness.stderr.contains("lease expired"))
            for process in [first, second] {
                kill(process.processIdentifier, SIGTERM)
                #expect(try await DaemonHarness.wait(process, timeout: .seconds(30)) == 0)
            }
            #expect(Set(Self.all(rsyslog)).count == count)
            #expect(Self.all(rsyslog).count - count <= 1000)
            #expect(Set(b.fileIDs()).count == count && b.fileIDs().count == count)
        }
    }

    @Test func postgresDownAndRestartedMidRunHoldsOnlyTheSharedSinkAndLeavesOneLeader() async throws {
        try await Self.with { harness, postgres, rsyslog in
            let count = 10_000
            let (a, b, first, second) = try await Self.twoMembers(
                harness, postgres, rsyslog, count: count, slowPages: 60)
            try await Task.sleep(for: .seconds(1))
            await postgres.stop()
            let stopped = ContinuousClock.now
            let filesAtStop = (a.fileIDs().count, b.fileIDs().count)
            // Past the lease: whoever led has stopped delivering to the collector by then.
            try await Task.sleep(for: .seconds(Self.lease + 2))
            let collectorWhileDown = Self.all(rsyslog).count
            // Down for a minute in all.
            try await Task.sleep(until: stopped + .seconds(60))
            #expect(Self.all(rsyslog).count == collectorWhileDown, "nothing reached the collector without a lease")
            #expect(
                a.fileIDs().count > filesAtStop.0 && b.fileIDs().count > filesAtStop.1,
                "the local sinks went on while the database was down")
            print(
                "coordination: in the minute PostgreSQL was down, the files grew by \(a.fileIDs().count - filesAtStop.0) and \(b.fileIDs().count - filesAtStop.1) events, the collector by \(Self.all(rsyslog).count - collectorWhileDown) after the lease"
            )
            try await postgres.start()
            harness.simulator.faults.removeAll()
            try await harness.waitFor("every event at the collector", timeout: .seconds(180)) {
                Set(Self.all(rsyslog)).count >= count
            }
            try await harness.waitFor("both files complete", timeout: .seconds(120)) {
                a.fileIDs().count >= count && b.fileIDs().count >= count
            }
            try await Task.sleep(for: .seconds(2))
            // One leader afterwards, whom both name.
            let shows = try await Self.shows(harness, [a, b])
            #expect(shows[0].holder == shows[1].holder && !shows[0].holder.contains("none"), "\(shows)")
            for process in [first, second] {
                kill(process.processIdentifier, SIGTERM)
                #expect(try await DaemonHarness.wait(process, timeout: .seconds(30)) == 0)
            }
            let collected = Self.all(rsyslog)
            #expect(Set(collected).count == count, "nothing lost")
            #expect(collected.count - count <= 1000, "at most the batch whose position could not be written, again")
            for member in [a, b] {
                #expect(member.fileIDs().count == count && Set(member.fileIDs()).count == count)
            }
            #expect(harness.stderr.contains("cannot be reached") || harness.stderr.contains("cannot write the shared"))
        }
    }

    @Test func aThirdMemberStartsAsAStandbyEveryMemberNamesTheSameHolderAndCheckSaysItInWords() async throws {
        try await Self.with { harness, postgres, rsyslog in
            let count = 2000
            let (a, b, first, second) = try await Self.twoMembers(
                harness, postgres, rsyslog, count: count, slowPages: 1)
            try await harness.waitFor("every event at the collector", timeout: .seconds(120)) {
                Set(Self.all(rsyslog)).count >= count
            }
            let c = try Member(
                "member-c", harness: harness, postgres: postgres, rsyslog: rsyslog, start: Self.now - 3 * 86_400)
            let third = try harness.launch(["run", "--config", c.configPath])
            try await harness.waitFor("member-c's file complete", timeout: .seconds(120)) {
                c.fileIDs().count >= count
            }
            #expect(Self.received(rsyslog, from: "member-c").isEmpty, "the third member stands by")
            let holders = try await Self.shows(harness, [a, b, c]).map(\.holder)
            #expect(Set(holders).count == 1 && !holders[0].contains("none") && !holders[0].isEmpty, "\(holders)")
            let checked = try await harness.output(["check", "--config", a.configPath])
            #expect(checked.status == 0, "\(harness.stderr)")
            #expect(
                checked.text.contains("coordination: ok (group ") && checked.text.contains("held by"), "\(checked.text)"
            )
            // A wrong password, in the server's words and never the password itself.
            let wrong = harness.directory + "/wrong-password"
            try "not the password at all".write(toFile: wrong, atomically: true, encoding: .utf8)
            let config = try String(contentsOfFile: a.configPath, encoding: .utf8)
                .replacingOccurrences(of: postgres.passwordFile, with: wrong)
            let badConfig = harness.directory + "/bad.yaml"
            try config.write(toFile: badConfig, atomically: true, encoding: .utf8)
            let before = harness.stderr.count
            let refused = try await harness.output(["check", "--config", badConfig])
            let said = String(harness.stderr.dropFirst(before))
            #expect(refused.status == 69, "\(said)")
            #expect(said.contains("password authentication failed for user \"auditd\""), "\(said)")
            #expect(!said.contains("not the password at all") && !said.contains("PSQLError"), "\(said)")
            for process in [first, second, third] {
                kill(process.processIdentifier, SIGTERM)
                #expect(try await DaemonHarness.wait(process, timeout: .seconds(30)) == 0)
            }
            #expect(Self.all(rsyslog).count == count, "three members, each event once")
        }
    }

    /// `state show` of each member: what it printed, and its line naming the lease's holder.
    static func shows(_ harness: DaemonHarness, _ members: [Member]) async throws -> [(text: String, holder: String)] {
        var shows: [(text: String, holder: String)] = []
        for member in members {
            let output = try await harness.output(["state", "show", "--config", member.configPath])
            #expect(output.status == 0, "\(harness.stderr)")
            shows.append(
                (output.text, output.text.components(separatedBy: "\n").first { $0.contains("lease holder:") } ?? ""))
        }
        return shows
    }
}
