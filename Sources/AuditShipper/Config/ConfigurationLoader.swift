import Foundation
import Logging
import Yams

/// Loads `config.yaml`, then applies `OPENAI_AUDITD_<PATH>` overrides, then validates.
///
/// | key | default | accepted |
/// |---|---|---|
/// | `api.base_url` | `https://api.openai.com/v1` | https URL; http only to a loopback host (the key must not cross a network in clear) |
/// | `api.admin_key_file` | null | path of a file holding the key |
/// | `api.organization` | null | sent as `OpenAI-Organization` |
/// | `api.request_timeout` | `30s` | duration, 1s to 10m |
/// | `api.page_size` | 100 | 1 to 100 |
/// | `api.max_concurrency` | 4 | 1 to 32: slices read at once while catching up, adapting to 429s (1: one at a time) |
/// | `api.include_tenant_events` | `auto` | `auto` (walk with `tenant_only=true`; stop, with a notice, if the API rejects it), `true`, `false` |
/// | `api.max_response_bytes` | `32MiB` | bytes, or with KiB/MiB/GiB; 1MiB to 1GiB |
/// | `api.proxy` | null | `http://[user:password@]host:port`; null: `HTTPS_PROXY`/`HTTP_PROXY`, minus `NO_PROXY` |
/// | `api.tls.ca_file` | null | PEM trust roots for the API instead of the system's |
/// | `api.filters.{event_types,project_ids,actor_ids,actor_emails,resource_ids}` | [] | lists of strings (comma-separated in the environment) |
/// | `poll.interval` | `60s` | duration, at least 1s |
/// | `poll.lookback` | `10m` | whole seconds, 0 to 7d |
/// | `poll.start_at` | `now` | `now`, `beginning`, RFC 3339, Unix seconds, `-7d` |
/// | `poll.max_window_events` | 10000 | 100 to 10,000,000 |
/// | `poll.max_window_bytes` | `256MiB` | bytes, or with KiB/MiB/GiB; 1MiB to 64GiB |
/// | `state.path` | null | path |
/// | `sinks` | one stdout sink | list of `{type: stdout, format: json}` |
/// | `coordination.type` | null | `postgres`: two or more hosts, one trail (null: this host alone) |
/// | `coordination.url` | null | `postgres://USER@HOST[:PORT]/DATABASE[?sslmode=verify-full\|require\|disable&sslrootcert=PATH]`; no password in it; `disable` to a loopback host only |
/// | `coordination.password_file` | null | path; null: the systemd credential `postgres-password`, else `PGPASSWORD` |
/// | `coordination.group` | null | the group's name; null: derived from the source (base URL, organization, filters) |
/// | `coordination.lease` | `30s` | duration, 3s to 10m: a holder that has not renewed for this long is replaced |
/// | `coordination.schema` | `public` | the PostgreSQL schema of the daemon's tables (`openai_auditd_*`) |
/// | `metrics.listen` | null | `HOST:PORT` (`[v6]:PORT`): serves /metrics, /healthz, /readyz |
/// | `detections.enabled` | `true` | `true`, `false`: Sigma rules evaluated as events pass |
/// | `detections.builtin_rules` | `/usr/share/openai-auditd/rules` | folder of the rules the package ships; null: none |
/// | `detections.rules` | [] | Sigma rule files and folders (`*.yml`, `*.yaml`) of the operator's |
/// | `detections.disable` | [] | rule ids that mark nothing |
/// | `log.level` | `info` | trace, debug, info, notice, warning, error, critical |
/// | `log.format` | `auto` | `auto` (journal priority prefixes when stderr is the journal), `text`, `json` |
///
/// Unknown keys, unknown `OPENAI_AUDITD_*` variables and bad values throw, naming the key.
public enum ConfigurationLoader {
    public static let defaultPath = "/etc/openai-auditd/config.yaml"

    public static func environmentName(for path: String) -> String {
        "OPENAI_AUDITD_" + path.uppercased().replacingAll(".", with: "_")
    }

    /// The configuration file to read: `--config`, then `OPENAI_AUDITD_CONFIG`, then the default.
    public static func path(flag: String?, environment: [String: String]) -> String {
        flag ?? environment["OPENAI_AUDITD_CONFIG"] ?? defaultPath
    }

    public static func load(file: String, environment: [String: String]) throws(ConfigurationError) -> Configuration {
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            let reason =
                FileManager.default.fileExists(atPath: file) ? "permission denied or not UTF-8" : "no such file"
            throw .unreadable(file: file, reason: reason)
        }
        return try parse(yaml: text, file: file, environment: environment)
    }

    public static func parse(
        yaml: String, file: String, environment: [String: String] = [:]
    ) throws(ConfigurationError) -> Configuration {
        var root: ConfigNode
        do {
            // The parser holds the anchors, which nodes refer to weakly: it stays alive while
            // the tree is read, so that `ConfigNode` can see (and refuse) them.
            let parser = try Parser(yaml: yaml)
            root = try withExtendedLifetime(parser) {
                try parser.singleRoot().map { try ConfigNode($0, file: file) } ?? .empty(file)
            }
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw .syntax(file: file, message: Self.describe(error))
        }
        if case .null = root.value { root = .empty(file) }
        try applyEnvironment(environment, to: &root)
        return try ConfigurationReader().configuration(root)
    }

    static func applyEnvironment(_ environment: [String: String], to root: inout ConfigNode) throws(ConfigurationError)
    {
        for (name, text) in environment.sorted(by: { $0.key < $1.key })
        where name.hasPrefix("OPENAI_AUDITD_") && name != "OPENAI_AUDITD_CONFIG" {
            guard let key = ConfigurationKey.byEnvironmentName[name] else {
                let known = ConfigurationKey.byEnvironmentName.keys.sorted()
                let hint = ConfigurationReader.suggestion(for: name, among: known)
                throw .invalid(
                    origin: "environment", path: name,
                    message:
                        "names no configuration key\(hint) (OPENAI_AUDITD_<SECTION>_<KEY>, e.g. OPENAI_AUDITD_POLL_INTERVAL)"
                )
            }
            let node: ConfigNode
            if key.environment == .list {
                let items = text.split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
                node = ConfigNode(
                    value: .list(items.map { ConfigNode(value: .scalar($0), origin: name) }), origin: name)
            } else {
                let isNull = text.isEmpty || text == "null"
                node = ConfigNode(value: isNull ? .null : .scalar(text), origin: name)
            }
            root.set(key.path.split(separator: ".").map(String.init)[...], to: node)
        }
    }

    static func describe(_ error: Error) -> String {
        if let yaml = error as? YamlError {
            switch yaml {
            case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
                .composer(_, let problem, let mark, _):
                return "line \(mark.line), column \(mark.column): \(problem)"
            case .duplicatedKeysInMapping(let duplicates, _):
                return "duplicate keys: \(duplicates.joined(separator: ", "))"
            default: break
            }
        }
        return "\(error)"
    }
}
