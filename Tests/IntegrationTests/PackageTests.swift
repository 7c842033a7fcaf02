import AuditSimulator
import Foundation
import Testing

/// The Debian package `make deb` builds, installed on this machine with `dpkg -i`: its files
/// are the ones docs/operations.md lists, the installed binary works, the installed unit's
/// `ExecStart` runs as systemd would run it, an upgrade keeps the operator's configuration,
/// the maintainer scripts call systemctl only when systemd runs, deb-systemd-helper keeps
/// the operator's enablement across removal and reinstall, and a purge removes what the
/// package recorded and names what it leaves.
///
/// `make test` builds the package and names it in `AUDITD_TEST_DEB`: without it the tests
/// fail and say so. Installing needs root (CI runs as root): without it that test is skipped,
/// naming why (`.needsRoot`).
@Suite(.serialized) struct PackageTests {
    static let now = Int64(Date().timeIntervalSince1970)
    static let package = "openai-auditd"
    static let unit = "/lib/systemd/system/openai-auditd.service"
    static let wants = "/etc/systemd/system/multi-user.target.wants/"
    /// What deb-systemd-helper records of the links enabling the unit makes.
    static let recorded = "/var/lib/systemd/deb-systemd-helper-enabled/openai-auditd.service.dsh-also"
    /// An instance of the template the test enables as an operator would.
    static let instance = "openai-auditd@package-test.service"

    /// Debian's lintian: no error and no warning, except the overrides the package ships with
    /// their reasons (a statically linked libyaml and the toolchain's zlib).
    @Test func lintianFindsNothingToReport() throws {
        let deb = try Self.debPath()
        let (status, output) = try Self.command("/usr/bin/lintian", ["--tag-display-limit", "0", deb])
        let tags = output.split(separator: "\n").filter {
            $0.range(of: #"^[EWIXO]: "#, options: .regularExpression) != nil
        }
        #expect(status == 0 && tags.isEmpty, "lintian \(deb):\n\(output)")
    }

    @Test(.needsRoot) func thePackageInstallsRunsAsItsUnitWouldAndRemovesCleanly() async throws {
        let deb = try Self.debPath()
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        if try Self.command("/usr/bin/dpkg", ["-s", Self.package]).status == 0 {
            // A leftover from an interrupted run would hide what this install does.
            _ = try sandbox.dpkg(["--purge", Self.package])
        }
        defer { unlink(Self.wants + Self.instance) }
        // Without systemd running the scripts call nothing; systemd's own dpkg trigger on
        // /usr/lib/systemd/catalog compiles the catalog (the scripts no longer do it twice).
        #expect(try sandbox.dpkg(["-i", deb]).calls.isEmpty, "no systemctl call without systemd")
        #expect(try Self.catalogHasOurEntry(sandbox.catalog), "systemd's trigger compiled the catalog")
        do {
            try await checkInstalled()
            try theOperatorEnables()
            try upgradeKeepsTheConfigurationAndRestartsRunningInstances(deb, sandbox: sandbox)
        } catch {
            _ = try? sandbox.dpkg(["--purge", Self.package])
            throw error
        }
        try removeReinstallAndPurge(deb, sandbox: sandbox)
        #expect(try !Self.catalogHasOurEntry(sandbox.catalog), "the trigger dropped the catalog entry")
    }

    func checkInstalled() async throws {
        // The files are the ones the guide lists, and the configuration is a conffile.
        let installed = try Self.command("/usr/bin/dpkg", ["-L", Self.package]).output
            .split(separator: "\n").map(String.init)
            .filter { path in
                var isDirectory: ObjCBool = false
                return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
            }
        let listed = try Self.guideFileList()
        #expect(Set(installed) == Set(listed), "dpkg -L and docs/operations.md differ")
        let conffiles = try Self.command("/usr/bin/dpkg-query", ["-W", "-f=${Conffiles}", Self.package]).output
        #expect(conffiles.contains("/etc/openai-auditd/config.yaml"))
        #expect(conffiles.contains("/etc/logrotate.d/openai-auditd"))
        // The rotation it installs is one logrotate accepts (--debug: read and planned, nothing moved).
        let logrotate = try Self.command(
            "/bin/sh", ["-c", "/usr/sbin/logrotate --debug --state /dev/null /etc/logrotate.d/openai-auditd 2>&1"])
        #expect(logrotate.status == 0, "\(logrotate.output)")
        #expect(
            logrotate.output.contains(
                "rotating pattern: /var/log/openai-auditd/*.json /var/log/openai-auditd-*/*.json"),
            "\(logrotate.output)")
        #expect(!logrotate.output.contains("error"), "\(logrotate.output)")
        let version = try Self.command("/usr/bin/dpkg-query", ["-W", "-f=${Version}", Self.package]).output
        #expect(try Self.command("/usr/bin/openai-auditd", ["--version"]).output == version + "\n")
        let manual = try Self.command("/bin/sh", ["-c", "gzip -dc /usr/share/man/man8/openai-auditd.8.gz"]).output
        for section in [".SH COMMANDS", "openai\\-auditd state reset", ".SH EXIT STATUS", "SIGHUP"] {
            #expect(manual.contains(section), "the man page has \(section)")
        }

        try await JournaldHarness.shared.start()
        try await DaemonHarness.with { harness async throws in
            let credentials = harness.directory + "/credentials"
            let state = harness.directory + "/state"
            for directory in [credentials, state] {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            try DaemonHarness.key.write(toFile: credentials + "/openai-admin-key", atomically: true, encoding: .utf8)
            // What systemd gives the unit, plus the API address: the installed configuration
            // is used as it is. A wrong key in the environment proves the credential wins.
            let environment = [
                "STATE_DIRECTORY": state, "CREDENTIALS_DIRECTORY": credentials,
                "OPENAI_ADMIN_KEY": "sk-admin-not-this-one-0000000000000",
                "OPENAI_AUDITD_API_BASE_URL": harness.simulator.baseURL,
            ]
            harness.simulator.addEvents(
                count: 30, from: Self.now - 600, to: Self.now - 60, types: EventGenerator.organizationTypes)

            // `check` with the installed configuration.
            let check = try harness.launch(
                ["check", "--config", "/etc/openai-auditd/config.yaml"], executable: "/usr/bin/openai-auditd",
                environment: environment)
            #expect(try await DaemonHarness.wait(check, timeout: .seconds(60)) == 0, "\(harness.stderr)")
            let report = try String(contentsOfFile: harness.stdoutPath, encoding: .utf8)
            #expect(report.contains("api: ok (\(harness.simulator.baseURL), no proxy)"), "\(report)")
            #expect(report.contains("sinks: ok (journald)"), "\(report)")

            // The unit's ExecStart, run as systemd would: credential, state directory,
            // notify socket and watchdog.
            let command = try Self.execStart()
            #expect(command.first == "/usr/bin/openai-auditd")
            let listener = try NotifyListener(directory: harness.directory)
            defer { listener.stop() }
            var service = environment
            service["NOTIFY_SOCKET"] = listener.path
            service["WATCHDOG_USEC"] = "2000000"
            service["OPENAI_AUDITD_POLL_START_AT"] = "-1h"
            service["OPENAI_AUDITD_POLL_INTERVAL"] = "1s"
            let daemon = try harness.launch(
                Array(command.dropFirst()), executable: command[0], environment: service)
            try await harness.waitFor("READY=1") { listener.lines.contains("READY=1") }
            let served = try harness.servedEvents()
            #expect(served.count == 30)
            try await harness.waitFor("the events in the journal", timeout: .seconds(60)) {
                let entries = try JournaldHarness.read(["SYSLOG_IDENTIFIER=openai-audit"])
                return Set(entries.compactMap { JournaldHarness.text($0["OPENAI_AUDIT_ID"]) })
                    .isSuperset(of: served.keys)
            }
            try await harness.waitFor("a watchdog ping") { !listener.times(of: "WATCHDOG=1").isEmpty }
            kill(daemon.processIdentifier, SIGTERM)
            #expect(try await DaemonHarness.wait(daemon, timeout: .seconds(60)) == 0, "\(harness.stderr)")
            #expect(listener.lines.contains("STOPPING=1"))
            let entries = try JournaldHarness.read(["SYSLOG_IDENTIFIER=openai-audit"]).filter {
                served.keys.contains(JournaldHarness.text($0["OPENAI_AUDIT_ID"]) ?? "")
            }
            #expect(entries.count == 30, "each event once")
            #expect(FileManager.default.fileExists(atPath: state + "/state.json"), "the state is in STATE_DIRECTORY")
            #expect(!harness.stderr.contains("sk-admin-"), "no key in the log")
        }
    }

    /// Installing enables nothing (the service needs a key first), but deb-systemd-helper
    /// records the link enabling makes; the operator then enables the unit and an instance
    /// with systemctl (offline here: systemd is not PID 1).
    func theOperatorEnables() throws {
        #expect(Self.link(Self.wants + "openai-auditd.service") == nil, "installing enables nothing")
        let recorded = try String(contentsOfFile: Self.recorded, encoding: .utf8)
        #expect(recorded == Self.wants + "openai-auditd.service\n", "deb-systemd-helper's record: \(recorded)")
        try Self.expectSuccess("/usr/bin/systemctl", ["enable", "openai-auditd.service", Self.instance])
        #expect(Self.link(Self.wants + "openai-auditd.service") == Self.unit)
        #expect(Self.link(Self.wants + Self.instance) == "/lib/systemd/system/openai-auditd@.service")
    }

    /// An upgrade (here: the same package again, under a running systemd) leaves an edited
    /// conffile as the operator left it, reloads systemd and restarts the running instances.
    func upgradeKeepsTheConfigurationAndRestartsRunningInstances(_ deb: String, sandbox: Sandbox) throws {
        let config = "/etc/openai-auditd/config.yaml"
        let edited = try String(contentsOfFile: config, encoding: .utf8) + "# edited by the operator\n"
        try edited.write(toFile: config, atomically: true, encoding: .utf8)
        let calls = try sandbox.dpkg(["-i", deb], systemd: true).calls
        #expect(calls == ["--system daemon-reload", "try-restart openai-auditd.service openai-auditd@*.service"])
        #expect(Self.link(Self.wants + "openai-auditd.service") == Self.unit, "still enabled")
        #expect(try String(contentsOfFile: config, encoding: .utf8) == edited)
        #expect(try Self.command("/usr/bin/openai-auditd", ["--version"]).status == 0)
    }

    /// A removal stops the instances, keeps the conffile and the enablement, and masks the unit
    /// while its file is gone; a reinstall lifts the mask; a purge removes the conffile, the
    /// recorded link and the mask, and names the instance link it leaves to the operator.
    func removeReinstallAndPurge(_ deb: String, sandbox: Sandbox) throws {
        let files = try Self.guideFileList()
        let mask = "/etc/systemd/system/openai-auditd.service"
        let calls = try sandbox.dpkg(["-r", Self.package], systemd: true).calls
        // deb-systemd-helper reloads systemd itself after masking; the script reloads last.
        #expect(calls.first == "stop openai-auditd.service openai-auditd@*.service", "\(calls)")
        #expect(calls.last == "--system daemon-reload", "\(calls)")
        let status = try Self.command("/usr/bin/dpkg-query", ["-W", "-f=${Status}", Self.package]).output
        #expect(status == "deinstall ok config-files", "after dpkg -r: \(status)")
        #expect(FileManager.default.fileExists(atPath: "/etc/openai-auditd/config.yaml"), "remove keeps the conffile")
        #expect(!FileManager.default.fileExists(atPath: "/usr/bin/openai-auditd"))
        #expect(Self.link(mask) == "/dev/null", "masked while the unit file is gone")
        #expect(Self.link(Self.wants + "openai-auditd.service") == Self.unit, "removal keeps the enablement")

        #expect(try sandbox.dpkg(["-i", deb]).calls.isEmpty)
        #expect(Self.link(mask) == nil, "a reinstall unmasks")
        #expect(Self.link(Self.wants + "openai-auditd.service") == Self.unit, "and the unit is enabled as before")

        let purge = try sandbox.dpkg(["--purge", Self.package])
        #expect(purge.calls.isEmpty)
        #expect(try Self.command("/usr/bin/dpkg", ["-s", Self.package]).status != 0, "purged")
        let left = files.filter { FileManager.default.fileExists(atPath: $0) }
        #expect(left.isEmpty, "left behind after purge: \(left)")
        #expect(Self.link(Self.wants + "openai-auditd.service") == nil, "the purge removes the recorded link")
        #expect(Self.link(mask) == nil, "and the mask")
        #expect(!FileManager.default.fileExists(atPath: Self.recorded), "and deb-systemd-helper's record")
        #expect(Self.link(Self.wants + Self.instance) != nil, "the operator's instance is theirs")
        #expect(
            purge.output.contains(
                "openai-auditd: \(Self.wants + Self.instance) (an instance you enabled) is left in place"),
            "\(purge.output)")
    }

    // MARK: - Helpers

    /// Where dpkg runs: a mount namespace of its own in which the compiled catalog directory
    /// is `catalog` (systemd's catalog trigger's `journalctl --update-catalog` writes there, and
    /// the catalog the journald tests rely on stays as it was), and `systemctl` is a stand-in
    /// that only records its arguments: systemd is not PID 1 on the test machines, so this
    /// is how the scripts' "systemd is running" branch is seen at all.
    struct Sandbox {
        let directory: String
        var catalog: String { directory + "/catalog" }
        var bin: String { directory + "/bin" }
        var calls: String { directory + "/systemctl-calls" }

        init() throws {
            directory = NSTemporaryDirectory() + "auditd-pkg-" + UUID().uuidString
            for path in [directory + "/catalog", directory + "/bin"] {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            }
            let systemctl = "#!/bin/sh\necho \"$*\" >> \(directory)/systemctl-calls\n"
            try systemctl.write(toFile: bin + "/systemctl", atomically: true, encoding: .utf8)
            _ = chmod(bin + "/systemctl", 0o755)
            // 104: "allowed". A machine's own policy-rc.d (container images ship one that says
            // 101, "never start services") would otherwise stop deb-systemd-invoke.
            try "#!/bin/sh\nexit 104\n".write(toFile: bin + "/policy-rc.d", atomically: true, encoding: .utf8)
            _ = chmod(bin + "/policy-rc.d", 0o755)
        }

        func remove() { try? FileManager.default.removeItem(atPath: directory) }

        /// Runs dpkg; with `systemd`, /run/systemd/system exists as it does under systemd.
        /// Returns the systemctl calls the maintainer scripts made and dpkg's output.
        func dpkg(_ arguments: [String], systemd: Bool = false) throws -> (calls: [String], output: String) {
            try? FileManager.default.removeItem(atPath: calls)
            let running =
                systemd
                ? "mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/system && "
                    + #"{ [ ! -e /usr/sbin/policy-rc.d ] || mount --bind "$1/policy-rc.d" /usr/sbin/policy-rc.d; } && "#
                : ""
            let output = try PackageTests.expectSuccess(
                "/usr/bin/unshare",
                [
                    "--mount", "--propagation", "private", "/bin/sh", "-c",
                    #"mount --bind "$0" /var/lib/systemd/catalog && "# + running
                        + #"PATH="$1:$PATH" && shift && exec dpkg "$@""#, catalog, bin,
                ] + arguments)
            let text = (try? String(contentsOfFile: calls, encoding: .utf8)) ?? ""
            return (text.split(separator: "\n").map(String.init), output)
        }
    }

    /// Whether the compiled catalog in `directory` holds the package's entry.
    static func catalogHasOurEntry(_ directory: String) throws -> Bool {
        guard let database = FileManager.default.contents(atPath: directory + "/database") else { return false }
        return database.range(of: Data("Subject: OpenAI audit event".utf8)) != nil
    }

    static func debPath() throws -> String {
        guard let path = ProcessInfo.processInfo.environment["AUDITD_TEST_DEB"] else {
            throw HarnessError(
                "the package test needs the .deb from 'make deb': run it with 'make test', which builds the package "
                    + "and sets AUDITD_TEST_DEB")
        }
        guard FileManager.default.fileExists(atPath: path) else {
            throw HarnessError("AUDITD_TEST_DEB=\(path) is missing")
        }
        return path
    }

    /// The files docs/operations.md says the package installs: the block after the marker.
    static func guideFileList() throws -> [String] {
        let guide = try String(contentsOfFile: DaemonHarness.root + "/docs/operations.md", encoding: .utf8)
        guard let marker = guide.range(of: "<!-- package-files -->"),
            let open = guide.range(of: "```\n", range: marker.upperBound..<guide.endIndex),
            let close = guide.range(of: "```", range: open.upperBound..<guide.endIndex)
        else { throw HarnessError("docs/operations.md has no file list after <!-- package-files -->") }
        return guide[open.upperBound..<close.lowerBound].split(separator: "\n")
            .map { $0.split(separator: " ").first.map(String.init) ?? "" }
            .filter { $0.hasPrefix("/") }
    }

    /// The installed unit's ExecStart, split into words (it has no quoting).
    static func execStart() throws -> [String] {
        let unit = try String(contentsOfFile: Self.unit, encoding: .utf8)
        guard let line = unit.split(separator: "\n").first(where: { $0.hasPrefix("ExecStart=") }) else {
            throw HarnessError("\(Self.unit) has no ExecStart=")
        }
        return line.dropFirst("ExecStart=".count).split(separator: " ").map(String.init)
    }

    static func command(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = [
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Runs a command that must succeed; returns its output (stdout and stderr).
    @discardableResult static func expectSuccess(_ path: String, _ arguments: [String]) throws -> String {
        let (status, output) = try command(path, arguments)
        guard status == 0 else {
            throw HarnessError("\(path) \(arguments.joined(separator: " ")) exited \(status):\n\(output)")
        }
        return output
    }

    /// Where the symbolic link at `path` points, or nil when there is none (a dangling link counts).
    static func link(_ path: String) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: path)
    }
}
