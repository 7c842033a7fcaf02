import AuditSimulator
import Foundation
import Testing

/// Setting a group up against a real PostgreSQL that serves TLS, as a team would: one host
/// alone first, its positions imported into the group, a role with only the rights on the
/// daemon's tables, and what is wrong (a missing right, a certificate from another CA) said
/// in words. No daemon runs: `once`, `check`, `state import` and `state show` as processes.
@Suite(.serialized) struct CoordinationSetupTests {
    /// A configuration with a local file and a file shared by the group (`shared: true`, so
    /// that no collector is needed), with `coordination` when given.
    static func config(
        _ harness: DaemonHarness, start: Int64, coordination: (url: String, password: String)? = nil
    ) throws -> String {
        var yaml = """
            api:
              base_url: \(harness.simulator.baseURL)
            poll:
              start_at: \(start)
            state:
              path: \(harness.directory)/state.json
            sinks:
              - type: file
                path: \(harness.directory)/local.json
                fsync: false
              - type: file
                name: siem
                path: \(harness.directory)/siem.json
                fsync: false
                shared: true

            """
        if let coordination {
            yaml += """
                coordination:
                  type: postgres
                  url: \(coordination.url)
                  password_file: \(coordination.password)
                  lease: 5s

                """
        }
        let path = harness.directory + "/config-\(UUID().uuidString.prefix(8)).yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func ids(_ path: String) -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return data.split(separator: UInt8(ascii: "\n")).compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any])?["id"] as? String
        }
    }

    @Test func oneHostImportedIntoAGroupOverVerifiedTLSThenARoleWithOnlyTableRightsAndWrongSetupsInWords()
        async throws
    {
        let postgres = try PostgresHarness(tls: true)
        do {
            try await postgres.start()
            try await DaemonHarness.with { harness in try await Self.walkThrough(harness, postgres) }
        } catch {
            await postgres.close()
            throw error
        }
        await postgres.close()
    }

    static func walkThrough(_ harness: DaemonHarness, _ postgres: PostgresHarness) async throws {
        let now = Int64(Date().timeIntervalSince1970)
        let start = now - 86_400
        harness.simulator.addEvents(count: 300, from: start, to: now - 600, types: EventGenerator.organizationTypes)
        let local = harness.directory + "/local.json"
        let siem = harness.directory + "/siem.json"
        let url = { (user: String, mode: String) in
            "postgres://\(user)@127.0.0.1:\(postgres.port)/auditd?sslmode=\(mode)"
        }
        let verified = url(postgres.user, "verify-full&sslrootcert=\(postgres.caFile)")

        // One host alone.
        let alone = try config(harness, start: start)
        #expect(try await harness.run(["once", "--config", alone]) == 0, "\(harness.stderr)")
        #expect(ids(siem).count == 300)

        // The group, over TLS verified against the test CA: the owner's check makes the tables,
        // and the host's position of its shared sink becomes the group's.
        let owner = try config(harness, start: start, coordination: (verified, postgres.passwordFile))
        let checked = try await harness.output(["check", "--config", owner])
        #expect(checked.status == 0, "\(harness.stderr)")
        #expect(checked.text.contains("coordination: ok (group "), "\(checked.text)")
        let imported = try await harness.output(["state", "import", "--config", owner])
        #expect(imported.status == 0, "\(harness.stderr)")
        #expect(imported.text.contains("sink siem: its position is the group's now"), "\(imported.text)")
        let again = try await harness.output(["state", "import", "--config", owner])
        #expect(again.text.contains("sink siem: the group has a position already; it is kept"), "\(again.text)")

        // A role with only the rights the daemon uses on its tables, made by the owner.
        try postgres.sql(
            """
            CREATE ROLE member LOGIN PASSWORD 'member password';
            GRANT SELECT ON openai_auditd_schema TO member;
            GRANT SELECT, INSERT, UPDATE ON openai_auditd_groups, openai_auditd_positions TO member;
            CREATE ROLE onlyreads LOGIN PASSWORD 'onlyreads password';
            GRANT SELECT ON openai_auditd_schema, openai_auditd_groups, openai_auditd_positions TO onlyreads;
            """)
        let memberPassword = harness.directory + "/member-password"
        try "member password".write(toFile: memberPassword, atomically: true, encoding: .utf8)
        let member = try config(
            harness, start: start,
            coordination: (
                url("member", "verify-full&sslrootcert=\(postgres.caFile)"), memberPassword
            ))
        harness.simulator.addEvents(count: 40, from: now - 500, to: now - 60, types: EventGenerator.organizationTypes)
        #expect(try await harness.run(["once", "--config", member]) == 0, "\(harness.stderr)")
        #expect(ids(siem).count == 340 && Set(ids(siem)).count == 340, "the imported position: nothing sent twice")
        #expect(ids(local).count == 340 && Set(ids(local)).count == 340)
        let shown = try await harness.output(["state", "show", "--config", member])
        #expect(shown.status == 0, "\(harness.stderr)")
        #expect(shown.text.contains("lease holder:"), "\(shown.text)")
        #expect(shown.text.contains("shared sink siem (the group's position):"), "\(shown.text)")

        // A role that may only read: named with what it lacks, at check, before any write.
        let readsPassword = harness.directory + "/reads-password"
        try "onlyreads password".write(toFile: readsPassword, atomically: true, encoding: .utf8)
        let reads = try config(
            harness, start: start,
            coordination: (url("onlyreads", "require"), readsPassword))
        var said = try await refused(harness, ["check", "--config", reads])
        print("coordination setup: a role that only reads: \(said.text)")
        #expect(said.status == 69, "\(said.text)")
        #expect(
            said.text.contains("the role onlyreads lacks INSERT on public.openai_auditd_groups"), "\(said.text)")

        // A server certificate from a CA that is not the one named: in words.
        let otherDirectory = harness.directory + "/other-ca"
        try FileManager.default.createDirectory(atPath: otherDirectory, withIntermediateDirectories: true)
        try TestCertificates.makeCA("other", in: otherDirectory)
        let untrusted = try config(
            harness, start: start,
            coordination: (
                url(postgres.user, "verify-full&sslrootcert=\(otherDirectory)/other.pem"),
                postgres.passwordFile
            ))
        said = try await refused(harness, ["check", "--config", untrusted])
        print("coordination setup: a certificate of another CA: \(said.text)")
        #expect(said.status == 69, "\(said.text)")
        #expect(said.text.contains("cannot be reached") && said.text.contains("certificate"), "\(said.text)")
        for leak in ["NIOSSL", "BoringSSL", "PSQLError", "Error(", postgres.password] {
            #expect(!said.text.contains(leak), "\(leak) in: \(said.text)")
        }

        // sslmode=require encrypts without verifying: the same server is fine.
        let required = try config(
            harness, start: start,
            coordination: (url(postgres.user, "require"), postgres.passwordFile))
        #expect(try await harness.output(["check", "--config", required]).status == 0, "\(harness.stderr)")
    }

    /// Runs a command expected to fail; its exit status and what it said on stderr.
    static func refused(_ harness: DaemonHarness, _ arguments: [String]) async throws -> (status: Int32, text: String) {
        let before = harness.stderr.count
        let status = try await harness.output(arguments).status
        return (status, String(harness.stderr.dropFirst(before)))
    }
}
