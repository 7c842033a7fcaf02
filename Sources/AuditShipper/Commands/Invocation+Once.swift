extension Invocation {
    /// `once`: one cycle from the state file's positions, caught up to the server's clock;
    /// throws `SinkError.notDelivered` (74) if some sink was left behind (the others were
    /// delivered and their positions written).
    @discardableResult
    public func once() async throws -> CycleReport {
        let (daemon, _) = try await startDaemon(keepsPositions: true)
        return try await daemon.closing {
            let (store, state) = try daemon.openState(environment: environment, now: Daemon.now())
            let runner = daemon.makeRunner(state: state, writer: .file(store))
            var report = try await runner.runCycle(now: Daemon.now())
            // A cycle that took the group's lease leaves the shared sinks to the next (`again`).
            while report.again { report.add(try await runner.runCycle(now: Daemon.now())) }
            withExtendedLifetime(store) {}
            guard report.sinkFailures.isEmpty else { throw SinkError.notDelivered(report.sinkFailures) }
            logger.info(
                "caught up",
                metadata: [
                    "cycle.delivered": "\(report.delivered)", "cycle.duplicates": "\(report.duplicatesDropped)",
                    "cycle.pages": "\(report.pages)", "cycle.slices": "\(report.slices)",
                    "cycle.set_aside": "\(report.setAside)",
                ])
            return report
        }
    }

    /// `replay`: every event of `[since, until)` to every sink, from a state made for the
    /// purpose and written nowhere (the state file is not touched, nor locked), no lookback.
    @discardableResult
    public func replay(since: Int64, until: Int64, now: Int64) async throws -> CycleReport {
        let (daemon, _) = try await startDaemon(keepsPositions: false)
        var settings = configuration.cycleSettings
        settings.lookback = 0
        var state = AuditState(source: configuration.stateSource, startAt: since, now: now)
        // Every sink from `since`, whatever its start_at says.
        _ = state.reconcile(sinks: daemon.sinks.map(\.name), starts: [:])
        let runner = daemon.makeRunner(state: state, settings: settings, writer: .nowhere, coordinated: false)
        return try await daemon.closing {
            let report = try await runner.runCycle(now: now, until: until)
            guard report.sinkFailures.isEmpty else { throw SinkError.notDelivered(report.sinkFailures) }
            logger.info(
                "replayed",
                metadata: [
                    "replay.since": "\(TimeSpec.format(since))", "replay.until": "\(TimeSpec.format(until))",
                    "cycle.delivered": "\(report.delivered)",
                ])
            return report
        }
    }
}
