import Logging
import ServiceLifecycle
import Synchronization

/// The daemon the poll loop uses and the one a reload prepared for its next cycle.
///
/// A reload never touches a cycle in flight: it only leaves a checked daemon here, and the
/// poll loop takes it before its next cycle. Whoever ends holding a daemon shuts it down:
/// the loop the one it replaced, `offer` the pending one it displaced, `shutdownAll` the rest.
public final class DaemonSlot: Sendable {
    struct Contents {
        var active: Daemon
        var pending: Daemon?
    }
    let contents: Mutex<Contents>

    public init(_ daemon: Daemon) {
        contents = Mutex(Contents(active: daemon))
    }

    /// The newest configuration accepted: the pending one if any, else the active one.
    public var latest: Daemon { contents.withLock { $0.pending ?? $0.active } }

    /// Leaves `daemon` for the next cycle; returns a pending one it displaced (never used).
    public func offer(_ daemon: Daemon) -> Daemon? {
        contents.withLock { contents in
            defer { contents.pending = daemon }
            return contents.pending
        }
    }

    /// The pending daemon, now active, and the one it replaces; nil when there is none.
    public func take() -> (new: Daemon, old: Daemon)? {
        contents.withLock { contents in
            guard let pending = contents.pending else { return nil }
            let old = contents.active
            contents.active = pending
            contents.pending = nil
            return (pending, old)
        }
    }

    public func shutdownAll() async {
        let (active, pending) = contents.withLock { ($0.active, $0.pending) }
        await pending?.shutdown()
        await active.shutdown()
    }
}
