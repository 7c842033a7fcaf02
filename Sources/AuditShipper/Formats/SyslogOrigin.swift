#if canImport(Glibc)
    import Glibc
#endif

/// Where a syslog line says it comes from: fixed for the life of a sink.
public struct SyslogOrigin: Sendable, Equatable {
    /// 0 (kern) to 23 (local7); `local0` is 16.
    public var facility: Int
    public var hostname: String
    public var appName: String
    public var procID: String
    /// The private enterprise number in the SD-ID `openai@<enterpriseID>`.
    public var enterpriseID: Int
    /// A UTF-8 byte order mark before an RFC 5424 MSG (RFC 5424 §6.4 says SHOULD; many collectors keep it as text).
    public var bom: Bool

    public init(
        facility: Int = 16, hostname: String = SyslogOrigin.localHostname(), appName: String = "openai-auditd",
        procID: String = String(getpid()), enterpriseID: Int = 32473, bom: Bool = false
    ) {
        self.facility = facility
        self.hostname = hostname
        self.appName = appName
        self.procID = procID
        self.enterpriseID = enterpriseID
        self.bom = bom
    }

    public static func localHostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "-" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "-" : name
    }

    /// The facility names of RFC 5424 §6.2.1 (as rsyslog spells them).
    public static let facilities = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp",
        "security", "console", "solaris-cron", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
        "local7",
    ]
}
