import Logging
import ServiceLifecycle

/// The long-running daemon: on every tick, one cycle; until graceful shutdown.
public struct AuditService: Service {
    /// What a cycle came to, and when the next one is due.
    public enum Outcome: Sendable {
        case finished(CycleReport, state: AuditState, interval: Duration)
        case failed(String, interval: Duration)
    }

    let runner: CycleRunner
    let interval: Duration
    let logger: Logger
    let clock: @Sendable () -> Int64
    /// Told after every cycle (sd_notify `STATUS=` and metrics hang here).
    let observer: @Sendable (Outcome) -> Void
    /// Told once when graceful shutdown begins (sd_notify `STOPPING=1`).
    let stopping: @Sendable () -> Void
    let heartbeat: Heartbeat?
    /// Where a reload leaves the daemon for the next cycle; nil when reloading is off.
    let reloads: DaemonSlot?

    public init(
        runner: CycleRunner, interval: Duration, logger: Logger, clock: @escaping @Sendable () -> Int64,
        heartbeat: Heartbeat? = nil, reloads: DaemonSlot? = nil,
        observer: @escaping @Sendable (Outcome) -> Void = { _ in }, stopping: @escaping @Sendable () -> Void = {}
    ) {
        self.reloads = reloads
        self.runner = runner
        self.interval = interval
        self.logger = logger
        self.clock = clock
        self.heartbeat = heartbeat
        self.observer = observer
        self.stopping = stopping
    }

    public func run() async throws {
        try await run(ticks: PollTimer.ticks(every:))
    }

    /// The loop over any tick source (a stream per interval; a reload that changes the
    /// interval asks for a new one); tests drive it with their own streams.
    public func run(ticks: @escaping (Duration) -> AsyncStream<Void>) async throws {
        try await withGracefulShutdownHandler {
            var interval = self.interval
            while let changed = try await loop(ticks: ticks(interval), interval: interval) {
                interval = changed
            }
            logger.info("stopped")
        } onGracefulShutdown: { [stopping] in
            stopping()
        }
    }

    /// Cycles, one per tick, until shutdown (nil) or until a reload changes the interval
    /// (the new interval; its first tick comes at once).
    func loop(ticks: AsyncStream<Void>, interval: Duration) async throws -> Duration? {
        heartbeat?.expectTicks(every: interval)
        for await _ in ticks.cancelOnGracefulShutdown() {
            heartbeat?.beat()
            if let next = await applyReload(), next != interval { return next }
            var step = await cycle(interval: interval)
            // A cycle that ended early for the lease is followed at once (`CycleReport.again`).
            while step == .again {
                heartbeat?.beat()
                step = await cycle(interval: interval)
            }
            if step == .stop { break }
        }
        return nil
    }

    /// What follows a cycle: the next tick, another cycle at once, or shutdown.
    enum Step { case tick, again, stop }

    func cycle(interval: Duration) async -> Step {
        let runner = self.runner
        let clock = self.clock
        do {
            // Shutdown cancels the cycle between pages and batches; the batch in flight
            // is finished and its state written before the cancellation is seen.
            let report = try await cancelWhenGracefulShutdown { try await runner.runCycle(now: clock()) }
            let state = await runner.state
            log(report, state: state)
            observer(.finished(report, state: state, interval: interval))
            return report.again && !Task.isShuttingDownGracefully ? .again : .tick
        } catch is CancellationError {
            return .stop
        } catch let error as StateError {
            // A full disk or a failing one is often transient: the daemon stays up, but
            // nothing more goes out until the position can be recorded (the runner writes
            // it first at the next poll), or every later delivery could repeat after a restart.
            let text = "\(error)"
            logger.error(
                "cannot write the state; delivery is paused until it can be written, retrying at the next poll",
                metadata: ["error": "\(text)"])
            observer(.failed(text, interval: interval))
            return .tick
        } catch {
            if Task.isShuttingDownGracefully { return .stop }
            let text = "\(error)"
            logger.error(
                "cycle failed, the state did not move; retrying at the next poll", metadata: ["error": "\(text)"])
            observer(.failed(text, interval: interval))
            return .tick
        }
    }

    /// Switches the runner to a daemon a reload left, if any, and retires the old one;
    /// returns the poll interval now in force.
    func applyReload() async -> Duration? {
        guard let (new, old) = reloads?.take() else { return nil }
        await runner.replaceCycle { current in new.makeCycle(writer: current.writer) }
        await old.shutdown(resigning: false)
        logger.info("the reloaded configuration is in effect")
        return new.configuration.poll.interval
    }

    func log(_ report: CycleReport, state: AuditState) {
        var metadata: Logger.Metadata = [
            "cycle.delivered": "\(report.delivered)", "cycle.duplicates": "\(report.duplicatesDropped)",
            "cycle.late": "\(report.lateEvents)", "cycle.pages": "\(report.pages)", "cycle.slices": "\(report.slices)",
        ]
        if report.setAside > 0 { metadata["cycle.set_aside"] = "\(report.setAside)" }
        // The oldest sink's position: what a reset after a lost state file would start from.
        if let oldest = state.positions.values.map(\.completeBefore).min() {
            metadata["state.complete_before"] = "\(TimeSpec.format(oldest))"
        }
        if !report.sinkFailures.isEmpty {
            metadata["cycle.failing_sinks"] = "\(report.sinkFailures.keys.sorted().joined(separator: ","))"
        }
        if let newest = report.newestDelivered { metadata["cycle.lag_seconds"] = "\(clock() - newest)" }
        if report.delivered > 0 || report.lateEvents > 0 {
            logger.info("cycle finished", metadata: metadata)
        } else {
            logger.debug("cycle finished", metadata: metadata)
        }
    }
}
