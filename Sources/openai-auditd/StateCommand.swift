import ArgumentParser
import AuditShipper

struct StateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state", abstract: "Show or reset the state file.",
        subcommands: [Show.self, Reset.self, Import.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print where the daemon stands (safe while it runs).")
        @OptionGroup var options: CommonOptions

        func run() async throws {
            try await options.perform { print(try await $0.showState(now: Daemon.now())) }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Copy this host's positions of the shared sinks into the coordination group, for sinks it has none for."
        )
        @OptionGroup var options: CommonOptions

        func run() async throws {
            try await options.perform {
                for line in try await $0.importState() { print(line) }
            }
        }
    }

    struct Reset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Start over: without --to, the next run is a first run (poll.start_at); with --to, it resumes from TIME."
        )
        @OptionGroup var options: CommonOptions

        @Option(help: "Resume from this time (RFC 3339, Unix seconds, or relative like -1h).")
        var to: String?

        func validate() throws {
            if let to { _ = try parseTime(to, flag: "--to") }
        }

        func run() async throws {
            let now = Daemon.now()
            let time = try to.map { try parseTime($0, flag: "--to", now: now) }
            try await options.perform {
                for line in try $0.resetState(to: time, now: now) { print(line) }
            }
        }
    }
}
