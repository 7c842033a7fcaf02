import CSystemd

#if canImport(Glibc)
    import Glibc
#endif

/// systemd's readiness, status and watchdog protocol (`sd_notify`). Outside systemd, with no
/// `NOTIFY_SOCKET`, every call does nothing.
public struct SystemdNotifier: Sendable {
    public let isEnabled: Bool

    public init(environment: [String: String]) {
        isEnabled = !(environment["NOTIFY_SOCKET"] ?? "").isEmpty
    }

    public func ready(status: String) { send("READY=1\nSTATUS=\(status)") }
    public func status(_ text: String) { send("STATUS=\(text)") }
    public func watchdog() { send("WATCHDOG=1") }
    public func stopping() { send("STOPPING=1\nSTATUS=stopping") }
    /// `RELOADING=1` until the next `ready(status:)`; `MONOTONIC_USEC` as newer systemd wants it.
    public func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let microseconds = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        send("RELOADING=1\nMONOTONIC_USEC=\(microseconds)\nSTATUS=reloading the configuration")
    }

    func send(_ state: String) {
        guard isEnabled else { return }
        _ = sd_notify(0, state)
    }

    /// Half of `WATCHDOG_USEC` when systemd asks for pings (`WatchdogSec=`), else nil.
    public static func watchdogInterval() -> Duration? {
        var microseconds: UInt64 = 0
        guard sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 else { return nil }
        return .microseconds(Int64(microseconds / 2))
    }
}
