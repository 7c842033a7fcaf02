import CSystemd
import Synchronization

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

/// When the poll loop last showed life: a tick, a page, a batch. The watchdog pings only
/// while this is recent, that is, younger than the patience the poll interval allows.
public final class Heartbeat: Sendable {
    let last = Mutex(ContinuousClock.now)
    let patience = Mutex(Heartbeat.patience(interval: .seconds(60)))

    public init() {}

    /// Until when the API asked us to wait (`Retry-After`); nil when no such wait is on.
    let retryAfterUntil = Mutex<ContinuousClock.Instant?>(nil)

    public func beat() { last.withLock { $0 = .now } }

    /// A `Retry-After` wait begins (until `until`) or ends (nil): waiting as told is not failing.
    /// (`RetryPolicy.sleep`, which the wait runs in, beats from its first instant on.)
    public func waiting(until: ContinuousClock.Instant?) { retryAfterUntil.withLock { $0 = until } }

    /// A `Retry-After` wait is in progress.
    public var isWaitingAsTold: Bool { retryAfterUntil.withLock { $0.map { $0 > .now } ?? false } }

    public var age: Duration { ContinuousClock.now - last.withLock { $0 } }

    /// Set by the poll loop whenever its interval is (re)set.
    public func expectTicks(every interval: Duration) {
        patience.withLock { $0 = Heartbeat.patience(interval: interval) }
    }

    public var isStale: Bool { age >= patience.withLock { $0 } }

    /// A cycle may legitimately wait out retries (Retry-After up to 15 min); past that plus
    /// two polls without a page, batch or tick, the loop is stuck.
    static func patience(interval: Duration) -> Duration { interval * 2 + .seconds(1800) }
}

/// `STATUS=` lines.
public enum StatusLine {
    /// `READY=1`'s: where delivery starts, and which sinks are down.
    public static func started(_ state: AuditState, lookback: Int64, failing: [String]) -> String {
        let start = state.positions.values.map { $0.windowStart(lookback: lookback) }.min()
        var text = start.map { "started, delivering events from \(TimeSpec.format($0))" } ?? "started, first run"
        if !failing.isEmpty { text += "; not reachable, will catch up: \(failing.joined(separator: ", "))" }
        return text
    }

    /// `delivered 12 events, lag 41s, next poll in 60s`, and any sink that failed.
    public static func after(_ report: CycleReport, state: AuditState, now: Int64, interval: Duration) -> String {
        var parts = ["delivered \(report.delivered) event\(report.delivered == 1 ? "" : "s")"]
        let newest = report.newestDelivered ?? state.positions.values.compactMap { $0.recent.values.max() }.max()
        if let newest { parts.append("lag \(max(0, now - newest))s") }
        parts.append("next poll in \(interval.components.seconds)s")
        var text = parts.joined(separator: ", ")
        if !report.sinkFailures.isEmpty {
            let names = report.sinkFailures.keys.sorted()
            text += "; failing: \(names.joined(separator: ", ")) (\(report.sinkFailures[names[0]]!.prefix(200)))"
        }
        return text
    }

    public static func failed(_ error: String, interval: Duration) -> String {
        "last poll failed, retrying in \(interval.components.seconds)s: \(error.prefix(300))"
    }
}
