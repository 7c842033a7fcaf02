import Foundation

/// Finds a secret the one way every one is found: a file the configuration names, else the
/// systemd credential `$CREDENTIALS_DIRECTORY/<credential>` (`LoadCredential=`), else an
/// environment variable. The admin key (`AdminKeyLoader`) and the sinks' tokens go through
/// here, so each is read, trimmed and checked the same way.
public struct SecretLoader: Sendable {
    /// The configuration key that names the file (`api.admin_key_file`, `sinks[0].token_file`).
    public var fileKey: String
    public var credential: String
    public var variable: String
    /// What the secret is, for messages: `admin key`, `HEC token`.
    public var what: String
    /// It goes into an HTTP header, where spaces and control characters are never valid; a
    /// database password may hold spaces.
    public var headerSafe: Bool

    public init(fileKey: String, credential: String, variable: String, what: String, headerSafe: Bool = true) {
        self.fileKey = fileKey
        self.credential = credential
        self.variable = variable
        self.what = what
        self.headerSafe = headerSafe
    }

    /// The secret, nil when none of the three places has it.
    public func load(file: String?, environment: [String: String]) throws(ConfigurationError) -> AdminKey? {
        if let file { return try read(file, origin: "\(fileKey) (\(file))") }
        if let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty {
            let path = "\(directory)/\(credential)"
            if FileManager.default.fileExists(atPath: path) {
                return try read(path, origin: "systemd credential \(credential)")
            }
        }
        if let value = environment[variable] { return try validated(value, origin: variable) }
        return nil
    }

    /// How to give it, for the error when there is none.
    public var missing: String {
        "no \(what): set \(fileKey), or provide the systemd credential '\(credential)' (LoadCredential=), or set \(variable)"
    }

    func read(_ path: String, origin: String) throws(ConfigurationError) -> AdminKey {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file"
            throw .secret(what: what, origin: origin, reason: "cannot read \(path): \(reason)")
        }
        return try validated(String(decoding: data, as: UTF8.self), origin: origin)
    }

    func validated(_ raw: String, origin: String) throws(ConfigurationError) -> AdminKey {
        let key = raw.trimmingSpaces
        guard !key.isEmpty else { throw .secret(what: what, origin: origin, reason: "it is empty") }
        // A line break inside is a file holding more than the secret; in an HTTP header, a
        // space or anything but ASCII is never valid either.
        guard !key.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw .secret(what: what, origin: origin, reason: "it contains line breaks or control characters")
        }
        guard !headerSafe || key.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            throw .secret(what: what, origin: origin, reason: "it contains spaces, line breaks or non-ASCII characters")
        }
        return AdminKey(key, origin: origin)
    }
}
