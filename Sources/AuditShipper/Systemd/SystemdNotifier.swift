import CSystemd
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// systemd's readiness, status and watchdog protocol (`sd_notify`). Outside systemd, with no
/// `NOTIFY_SOCKET`, every call does nothing.
///
/// A message systemd does not get is logged (an error, once until one gets through again):
/// a lost READY=1 fails the unit's start, and lost WATCHDOG=1 pings get the daemon killed,
/// so the journal should say why before that happens.
public final class SystemdNotifier: Sendable {
    public let isEnabled: Bool
    let logger: Logger?
    /// A message failed since the last one that got through.
    let failing = Atomic(false)

    public init(environment: [String: String], logger: Logger? = nil) {
        isEnabled = !(environment["NOTIFY_SOCKET"] ?? "").isEmpty
        self.logger = logger
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
        // < 0: -errno; 0: no socket to send to (NOTIFY_SOCKET was unset meanwhile); > 0: sent.
        let result = sd_notify(0, state)
        if result > 0 {
            failing.store(false, ordering: .relaxed)
        } else if !failing.exchange(true, ordering: .relaxed) {
            let reason = result < 0 ? POSIX.errnoText(-result) : "no notification socket"
            let kind = state.prefix { $0 != "=" }
            logger?.error(
                "cannot notify systemd; a lost READY fails the unit's start and lost WATCHDOG pings get it restarted",
                metadata: ["notify.message": "\(kind)", "error": "\(reason)"])
        }
    }

    /// Half of `WATCHDOG_USEC` when systemd asks for pings (`WatchdogSec=`), else nil.
    public static func watchdogInterval() -> Duration? {
        var microseconds: UInt64 = 0
        guard sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 else { return nil }
        return .microseconds(Int64(microseconds / 2))
    }
}
