import ArgumentParser
import AuditShipper

struct RulesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules", abstract: "List the detection rules, or try them on events.",
        subcommands: [List.self, Test.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every rule read: id, level, whether it marks events, title, and where it was read.")
        @OptionGroup var options: CommonOptions

        func run() async throws {
            try await options.perform {
                for line in try $0.listRules() { print(line) }
            }
        }
    }

    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run events (one JSON object a line) through the rules; print a line for each that matched.")
        @OptionGroup var options: CommonOptions

        @Argument(help: "A file of events, one JSON object a line (what a file sink writes).")
        var file: String

        func run() async throws {
            try await options.perform {
                for line in try $0.testRules(file: file) { print(line) }
            }
        }
    }
}
