import Foundation
import Testing

@testable import AuditShipper

/// The one table of configuration keys against what the operator reads: the key table in
/// `ConfigurationLoader`'s documentation and `config/config.example.yaml`, which says it holds
/// every key. A key added to one and not the others fails here.
@Suite struct ConfigurationKeyTests {
    /// The keys with no child in the table: what a file spells out.
    static let leaves = Set(
        ConfigurationKey.all.map(\.path).filter { path in
            !ConfigurationKey.all.contains { $0.path.hasPrefix(path + ".") }
        })

    static func read(_ path: String) throws -> String {
        try String(contentsOf: ConfigurationTests.root.appendingPathComponent(path), encoding: .utf8)
    }

    @Test func theExampleConfigurationHoldsEveryKeyAndNoOther() throws {
        // Indentation is the example's structure (two spaces a level); a list (`sinks`) ends
        // the descent: its items are each a sink's keys.
        var stack: [(indent: Int, key: String)] = []
        var keys = Set<String>()
        for raw in try Self.read("config/config.example.yaml").split(separator: "\n") {
            let line = raw.prefix { $0 != "#" }
            let indent = line.prefix { $0 == " " }.count
            let text = line.dropFirst(indent)
            guard let colon = text.firstIndex(of: ":"), !text.hasPrefix("-"), text.first?.isLetter == true else {
                continue
            }
            while let last = stack.last, last.indent >= indent { stack.removeLast() }
            if let parent = stack.last?.key, parent == "sinks" { continue }
            let path = (stack.map(\.key) + [String(text[..<colon])]).joined(separator: ".")
            stack.append((indent, String(text[..<colon])))
            keys.insert(path)
        }
        let leaves = keys.filter { key in !keys.contains { $0.hasPrefix(key + ".") } }
        #expect(
            leaves == Self.leaves,
            "only in the example: \(leaves.subtracting(Self.leaves)); missing: \(Self.leaves.subtracting(leaves))")
    }

    @Test func theDocumentedTableHoldsEveryKeyAndNoOther() throws {
        var keys = Set<String>()
        for line in try Self.read("Sources/AuditShipper/Config/ConfigurationLoader.swift").split(separator: "\n")
        where line.hasPrefix("/// | `") {
            let key = line.dropFirst("/// | `".count).prefix { $0 != "`" }
            // `api.filters.{event_types,project_ids}`: one row for several keys.
            if let open = key.firstIndex(of: "{"), let close = key.firstIndex(of: "}") {
                for name in key[key.index(after: open)..<close].split(separator: ",") {
                    keys.insert(String(key[..<open]) + name)
                }
            } else {
                keys.insert(String(key))
            }
        }
        #expect(
            keys == Self.leaves,
            "only documented: \(keys.subtracting(Self.leaves)); undocumented: \(Self.leaves.subtracting(keys))")
    }

    @Test func everyKeyButTheWholeOnesCanBeSetFromTheEnvironment() throws {
        for key in ConfigurationKey.all where key.environment != .none {
            let name = ConfigurationLoader.environmentName(for: key.path)
            #expect(ConfigurationKey.byEnvironmentName[name]?.path == key.path)
        }
        let whole = ConfigurationKey.all.filter { $0.environment == .none }.map(\.path)
        #expect(whole == ["api.filters", "sinks"], "set one child at a time, or not from the environment")
        // A reload may change anything but the source, the state's path, the group and the endpoint.
        #expect(
            ConfigurationKey.all.filter(\.fixedAtStart).map(\.path)
                == [
                    "api.base_url", "api.organization", "api.filters", "state.path", "coordination.type",
                    "coordination.url", "coordination.password_file", "coordination.group", "coordination.lease",
                    "coordination.schema", "metrics.listen",
                ])
    }
}
