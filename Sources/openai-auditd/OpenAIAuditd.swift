import ArgumentParser
import AuditShipper
import Logging

@main
struct OpenAIAuditd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "openai-auditd",
        abstract: "Ship an OpenAI organization's audit log to the journal, syslog or stdout.",
        discussion: """
            Exit codes:
              0   success
              64  usage error on the command line
              65  state file unreadable, corrupt, or from another source
              69  upstream unreachable
              70  internal error
              73  state file cannot be written, or is in use by another instance
              74  a sink failed
              77  admin key rejected (401/403)
              78  configuration invalid, or no admin key found
            """,
        version: AuditShipperVersion.current,
        subcommands: [Run.self, Once.self, Check.self, Replay.self, StateCommand.self, RulesCommand.self],
        defaultSubcommand: Run.self
    )

    static func main() async {
        if !ProcessMemory.configure() {
            // Before logging is set up; nothing else depends on it.
            DiagnosticLogHandler.standardError(
                Array("openai-auditd: glibc refused the allocator settings; memory is bounded less tightly\n".utf8))
        }
        await main(nil)
    }
}

/// Options every subcommand takes.
struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: "Configuration file (default: $OPENAI_AUDITD_CONFIG or /etc/openai-auditd/config.yaml).")
    var config: String?

    @Option(name: .long, help: "Log level for the daemon's own diagnostics on stderr (overrides log.level).")
    var logLevel: LogLevelArgument?
}

extension CommonOptions {
    /// The library's `Invocation.perform` with these flags; a failure (already on stderr)
    /// becomes the process's exit code.
    func perform(_ body: (Invocation) async throws -> Void) async throws {
        let code = await Invocation.perform(
            configFlag: config, logLevel: logLevel.flatMap { Logger.Level(rawValue: $0.rawValue) }, body)
        if code != 0 { throw ExitCode(code) }
    }
}

enum LogLevelArgument: String, ExpressibleByArgument, CaseIterable {
    case trace, debug, info, notice, warning, error, critical
}
