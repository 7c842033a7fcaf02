/// Finds the admin key: `api.admin_key_file`, else the systemd credential
/// `$CREDENTIALS_DIRECTORY/openai-admin-key`, else `$OPENAI_ADMIN_KEY` (`SecretLoader`).
public enum AdminKeyLoader {
    public static let credentialName = "openai-admin-key"
    static let loader = SecretLoader(
        fileKey: "api.admin_key_file", credential: credentialName, variable: "OPENAI_ADMIN_KEY", what: "admin key")

    public static func load(
        configuration: Configuration, environment: [String: String]
    ) throws(ConfigurationError) -> AdminKey {
        guard let key = try loader.load(file: configuration.api.adminKeyFile, environment: environment) else {
            throw .noAdminKey
        }
        return key
    }
}
