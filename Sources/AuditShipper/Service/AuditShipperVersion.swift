/// The product version, shown by `--version` and sent as the User-Agent.
public enum AuditShipperVersion {
    public static let current = "0.1.0"
}
