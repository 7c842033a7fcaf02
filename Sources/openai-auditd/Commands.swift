import ArgumentParser
import AuditShipper

// Each command parses its flags and calls the library's `Invocation`, where what it means
// lives (and where the tests reach it); a failure's message is already on stderr.

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon (the default).",
        discussion: """
            Polls the audit log every poll.interval and delivers new events to every sink. \
            SIGTERM or SIGINT finishes the batch in flight, writes the state and exits 0. \
            SIGHUP reads the configuration again: a valid one takes effect at the next cycle, \
            an invalid one is logged and the running one kept (api.base_url, api.organization, \
            api.filters and state.path need a restart).
            """)
    @OptionGroup var options: CommonOptions

    func run() async throws {
        try await options.perform { try await $0.run() }
    }
}

struct Once: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Catch up fully, deliver, and exit.")
    @OptionGroup var options: CommonOptions

    func run() async throws {
        try await options.perform { try await $0.once() }
    }
}

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate the configuration, call the API once (limit=1), open every sink.")
    @OptionGroup var options: CommonOptions

    func run() async throws {
        try await options.perform { try await $0.check { print($0) } }
    }
}

struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-send the events of a time range to every sink; the state file is not touched.")
    @OptionGroup var options: CommonOptions

    @Option(help: "Start of the range (RFC 3339, Unix seconds, or relative like -7d).")
    var since: String

    @Option(help: "End of the range, exclusive (default: now).")
    var until: String?

    func validate() throws {
        _ = try parseTime(since, flag: "--since")
        if let until { _ = try parseTime(until, flag: "--until") }
    }

    func run() async throws {
        let now = Daemon.now()
        let since = try parseTime(since, flag: "--since", now: now)
        let until = try until.map { try parseTime($0, flag: "--until", now: now) } ?? now
        guard since < until else { throw ValidationError("--since must be before --until") }
        try await options.perform { try await $0.replay(since: since, until: until, now: now) }
    }
}

/// A time flag's value, or a usage error (64) that names the flag.
func parseTime(_ text: String, flag: String, now: Int64 = Daemon.now()) throws -> Int64 {
    guard let time = TimeSpec.time(text, now: now) else {
        throw ValidationError("\(flag) '\(text)' is not a time (RFC 3339, Unix seconds, or -7d/-12h/-30m)")
    }
    return time
}
