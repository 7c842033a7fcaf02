import Foundation

extension ConfigurationReader {
    /// `coordination:`; null or absent: this host alone.
    func coordination(_ node: ConfigNode) throws(ConfigurationError) -> Configuration.CoordinationSettings? {
        if case .null = node.value { return nil }
        let f = try fields(node, "coordination", allowed: ConfigurationKey.children(of: "coordination"))
        guard let typeNode = f["type"] else {
            throw invalid(node, "coordination.type", "is required (postgres), or remove coordination to run alone")
        }
        // `type: null`: alone, as the example configuration has it.
        if case .null = typeNode.value { return nil }
        _ = try choice(typeNode, "coordination.type", ["postgres"])
        guard let urlNode = f["url"] else {
            throw invalid(node, "coordination.url", "is required (e.g. postgres://auditd@db.example.com:5432/auditd)")
        }
        var settings = try postgresURL(urlNode)
        if let n = f["password_file"] { settings.passwordFile = try string(n, "coordination.password_file") }
        if let n = f["group"], let group = try string(n, "coordination.group") {
            guard !group.isEmpty, group.count <= 200,
                !group.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
            else {
                throw invalid(n, "coordination.group", "must be 1 to 200 characters, none of them control characters")
            }
            settings.group = group
        }
        if let n = f["lease"] {
            settings.lease = try duration(n, "coordination.lease", .seconds(3)...(.seconds(600)))
        }
        if let n = f["schema"] {
            let schema = try string(n, "coordination.schema") ?? "public"
            // It is put in statements as an identifier: a plain one only, no quoting games.
            guard let first = schema.unicodeScalars.first, first == "_" || ("a"..."z").contains(first),
                schema.count <= 63,
                schema.unicodeScalars.allSatisfy({ $0 == "_" || ("a"..."z").contains($0) || ("0"..."9").contains($0) })
            else {
                throw invalid(
                    n, "coordination.schema",
                    "'\(schema)' is not a plain PostgreSQL name (lower-case letters, digits and _, at most 63)")
            }
            settings.schema = schema
        }
        return settings
    }

    /// `postgres://USER@HOST[:PORT]/DATABASE[?sslmode=…&sslrootcert=…]`, with no password in it:
    /// a configuration file is read by more people than a secret should be.
    func postgresURL(_ node: ConfigNode) throws(ConfigurationError) -> Configuration.CoordinationSettings {
        let path = "coordination.url"
        let example = "postgres://auditd@db.example.com:5432/auditd"
        guard let text = try string(node, path) else { throw invalid(node, path, "must not be null") }
        guard let parts = URLComponents(string: text), let scheme = parts.scheme?.lowercased(),
            ["postgres", "postgresql"].contains(scheme), let host = parts.host, !host.isEmpty
        else {
            throw invalid(node, path, "'\(text)' is not a PostgreSQL URL such as \(example)")
        }
        guard parts.password == nil else {
            throw invalid(
                node, path,
                "holds a password; put it in coordination.password_file, the systemd credential postgres-password or PGPASSWORD instead"
            )
        }
        guard let user = parts.user, !user.isEmpty else {
            throw invalid(node, path, "names no user (e.g. \(example))")
        }
        let database = String(parts.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else {
            throw invalid(node, path, "names no database (e.g. \(example))")
        }
        var settings = Configuration.CoordinationSettings()
        settings.url = text
        settings.host = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        settings.port = parts.port ?? 5432
        settings.user = user
        settings.database = database
        for item in parts.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                let modes = Configuration.CoordinationSettings.SSLMode.allCases.map(\.rawValue)
                guard let value = item.value, let mode = Configuration.CoordinationSettings.SSLMode(rawValue: value)
                else {
                    throw invalid(
                        node, path, "sslmode '\(item.value ?? "")' is not one of \(modes.joined(separator: ", "))")
                }
                settings.sslMode = mode
            case "sslrootcert":
                guard let value = item.value, !value.isEmpty else {
                    throw invalid(node, path, "sslrootcert names no file")
                }
                settings.caFile = value
            default:
                throw invalid(
                    node, path, "'\(item.name)' is not a parameter the daemon reads (sslmode and sslrootcert are)")
            }
        }
        guard settings.sslMode != .disable || Self.isLoopback(host: settings.host) else {
            throw invalid(
                node, path,
                "sslmode=disable would send the password and the positions in clear; it is allowed only to a loopback host"
            )
        }
        return settings
    }
}
