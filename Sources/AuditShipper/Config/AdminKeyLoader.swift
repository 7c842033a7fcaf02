import Foundation

/// Finds the admin key: `api.admin_key_file`, else the systemd credential
/// `$CREDENTIALS_DIRECTORY/openai-admin-key`, else `$OPENAI_ADMIN_KEY`.
public enum AdminKeyLoader {
    public static let credentialName = "openai-admin-key"

    public static func load(
        configuration: Configuration, environment: [String: String]
    ) throws(ConfigurationError) -> AdminKey {
        if let file = configuration.api.adminKeyFile {
            return try read(file, origin: "api.admin_key_file (\(file))")
        }
        if let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty {
            let path = "\(directory)/\(credentialName)"
            if FileManager.default.fileExists(atPath: path) {
                return try read(path, origin: "systemd credential \(credentialName)")
            }
        }
        if let value = environment["OPENAI_ADMIN_KEY"] {
            return try validated(value, origin: "OPENAI_ADMIN_KEY")
        }
        throw .noAdminKey
    }

    static func read(_ path: String, origin: String) throws(ConfigurationError) -> AdminKey {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file"
            throw .adminKey(origin: origin, reason: "cannot read \(path): \(reason)")
        }
        return try validated(String(decoding: data, as: UTF8.self), origin: origin)
    }

    static func validated(_ raw: String, origin: String) throws(ConfigurationError) -> AdminKey {
        let key = raw.trimmingSpaces
        guard !key.isEmpty else { throw .adminKey(origin: origin, reason: "it is empty") }
        // The key goes into an HTTP header: a control character or space there is never valid.
        guard key.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            throw .adminKey(origin: origin, reason: "it contains spaces, line breaks or non-ASCII characters")
        }
        return AdminKey(key, origin: origin)
    }
}
