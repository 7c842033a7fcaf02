import Yams

/// The YAML tree reduced to what the configuration uses, with where each value came from
/// (`config.yaml:12` or the environment variable that set it) for error messages.
struct ConfigNode {
    enum Value {
        case null
        case scalar(String)
        case list([ConfigNode])
        case map([(key: String, value: ConfigNode)])
    }

    var value: Value
    var origin: String

    static func empty(_ origin: String) -> ConfigNode { ConfigNode(value: .map([]), origin: origin) }

    init(value: Value, origin: String) {
        self.value = value
        self.origin = origin
    }

    init(_ node: Node, file: String) throws(ConfigurationError) {
        origin = node.mark.map { "\(file):\($0.line)" } ?? file
        // The composer resolves an alias to the very node its anchor names, so an anchored
        // node is where both meet. Refused there, before anything is copied: a few lines of
        // nested aliases (a "billion laughs") would otherwise expand into gigabytes, inside
        // the daemon on a reload.
        if let anchor = node.anchor {
            throw .syntax(
                file: file,
                message:
                    "\(origin): YAML anchors and aliases (&\(anchor.rawValue), *\(anchor.rawValue)) are not supported; write the value out"
            )
        }
        switch node {
        case .scalar(let scalar):
            let nulls: Set<String> = ["", "~", "null", "Null", "NULL"]
            value = scalar.style == .plain && nulls.contains(scalar.string) ? .null : .scalar(scalar.string)
        case .sequence(let sequence):
            var items: [ConfigNode] = []
            for item in sequence { items.append(try ConfigNode(item, file: file)) }
            value = .list(items)
        case .mapping(let mapping):
            var pairs: [(key: String, value: ConfigNode)] = []
            for (key, item) in mapping {
                guard case .scalar(let name) = key else {
                    throw .syntax(file: file, message: "line \(key.mark?.line ?? 0): a key must be a plain name")
                }
                pairs.append((name.string, try ConfigNode(item, file: file)))
            }
            value = .map(pairs)
        case .alias:
            throw .syntax(file: file, message: "\(origin): YAML aliases are not supported here")
        }
    }

    /// Sets the value at `path` (creating mappings on the way), for environment overrides.
    mutating func set(_ path: ArraySlice<String>, to node: ConfigNode) {
        guard let head = path.first else {
            self = node
            return
        }
        var pairs: [(key: String, value: ConfigNode)] = []
        if case .map(let existing) = value { pairs = existing }
        if let index = pairs.firstIndex(where: { $0.key == head }) {
            pairs[index].value.set(path.dropFirst(), to: node)
        } else {
            var child = ConfigNode.empty(node.origin)
            child.set(path.dropFirst(), to: node)
            pairs.append((head, child))
        }
        value = .map(pairs)
    }
}
