/// Why the state file cannot be used. Each message names the file and the way out.
public enum StateError: Error, CustomStringConvertible, Sendable {
    case corrupt(path: String, reason: String)
    case unsupportedVersion(path: String, version: Int)
    case otherSource(path: String, recorded: StateSource, configured: StateSource)
    case unreadable(path: String, reason: String)
    case unwritable(path: String, reason: String)
    case locked(path: String, holder: String)
    case symbolicLink(path: String, what: String)

    static let wayOut =
        "the file was left untouched; move it aside or run 'openai-auditd state reset' (optionally --to TIME) to start over"

    public var description: String {
        switch self {
        case .corrupt(let path, let reason): "state file \(path) is corrupt (\(reason)); \(Self.wayOut)"
        case .unsupportedVersion(let path, let version):
            "state file \(path) has version \(version), this openai-auditd reads versions 1 to \(AuditState.currentVersion); \(Self.wayOut)"
        case .otherSource(let path, let recorded, let configured):
            "state file \(path) belongs to another source (recorded: \(recorded); configured: \(configured)); \(Self.wayOut)"
        case .unreadable(let path, let reason): "cannot read state file \(path): \(reason)"
        case .unwritable(let path, let reason): "cannot write state file \(path): \(reason)"
        case .symbolicLink(let path, let what):
            "the \(what) \(path) is a symbolic link; openai-auditd never follows one there (it could be made to "
                + "overwrite another file); remove the link and let openai-auditd create the file"
        case .locked(let path, let holder):
            "state file \(path) is in use by another openai-auditd (\(holder)); one instance per state file"
        }
    }

    /// sysexits: 65 (EX_DATAERR) for a file we must not use, 73 (EX_CANTCREAT) for one we cannot write.
    public var exitCode: Int32 {
        switch self {
        case .corrupt, .unsupportedVersion, .otherSource, .unreadable: 65
        case .unwritable, .locked, .symbolicLink: 73
        }
    }
}
