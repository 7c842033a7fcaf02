/// A configuration that cannot be used. Messages name the file, line and key path, and say
/// what was expected.
public enum ConfigurationError: Error, CustomStringConvertible, Sendable {
    case unreadable(file: String, reason: String)
    case syntax(file: String, message: String)
    /// A key present but wrong; `origin` is `file:line` or the environment variable.
    case invalid(origin: String, path: String, message: String)
    case noAdminKey
    /// A secret (`SecretLoader`) that was found but cannot be used.
    case secret(what: String, origin: String, reason: String)
    /// A sink's secret that is nowhere (`SecretLoader.missing`).
    case noSecret(path: String, message: String)

    public var description: String {
        switch self {
        case .unreadable(let file, let reason): "cannot read configuration \(file): \(reason)"
        case .syntax(let file, let message): "\(file): not valid YAML: \(message)"
        case .invalid(let origin, let path, let message): "\(origin): \(path): \(message)"
        case .noAdminKey:
            "no admin key: set api.admin_key_file, or provide the systemd credential 'openai-admin-key' (LoadCredential=), or set OPENAI_ADMIN_KEY"
        case .secret(let what, let origin, let reason): "\(what) from \(origin): \(reason)"
        case .noSecret(let path, let message): "\(path): \(message)"
        }
    }
}
