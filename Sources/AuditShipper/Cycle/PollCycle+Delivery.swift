import Logging

extension PollCycle {
    /// Hands a slice's `events` to the active sinks in batches, each sink only what it does
    /// not hold; the state is written after each batch. With the last batch (or alone, for an
    /// empty slice) the slice is complete for every sink still active: its T moves to
    /// `completing`, unless this is not the `final` part of the slice (one second read in
    /// parts). No T moves past `completing` (nor `clock`, the server's), whatever the events'
    /// own stamps say. A batch holds at most `batchSize` events and `maxBatchBytes` bytes
    /// (one event at least).
    func deliver(
        _ events: [AuditEvent], completing end: Int64?, clock: Int64, final: Bool = true, progress: inout Progress,
        now: Int64
    ) async throws {
        // What a batch may complete: up to the slice's end (capped at the server's clock
        // already), or the clock where the slice reached nothing.
        let bound = end ?? clock
        var offset = 0
        repeat {
            var batchEnd = offset
            var batchBytes = 0
            while batchEnd < events.count, batchEnd - offset < settings.batchSize,
                batchEnd == offset || batchBytes + events[batchEnd].jsonCount <= settings.maxBatchBytes
            {
                batchBytes += events[batchEnd].jsonCount
                batchEnd += 1
            }
            let batch = mark(events[offset..<batchEnd])
            offset += batch.count
            // Per event of the batch: given to some sink, and late for some sink (counted once).
            var given = [Bool](repeating: false, count: batch.count)
            var late = [Bool](repeating: false, count: batch.count)
            var delivering: [any Sink] = []
            let times = progress.positionTimes()
            for sink in progress.active {
                // Never to a shared sink once this member's lease may be another's: it could
                // have expired while a batch or a page took long, or while the process was frozen.
                if shared.contains(sink.name), !progress.leading || !(coordination?.holds ?? false) {
                    if progress.leading {
                        logger.error(
                            "this member's lease expired before it could be renewed: it stops delivering to the shared sinks",
                            metadata: ["sink": "\(sink.name)"])
                        progress.standDown(shared)
                    }
                    continue
                }
                // Read in a scope of its own: a copy of the position still alive when it is
                // accepted below would make that copy every id the sink holds.
                let completeBefore: Int64
                let indices: [Int]
                do {
                    let position = progress.state.positions[sink.name]!
                    let windowStart = position.windowStart(lookback: settings.lookback)
                    completeBefore = position.completeBefore
                    indices = batch.indices.filter { position.needs(batch[$0], windowStart: windowStart) }
                }
                let subset = indices.map { batch[$0] }
                // `min_level`: only what the rules raised that far goes out; the position moves
                // over the rest all the same.
                let sent =
                    minLevels[sink.name].map { least in
                        subset.filter { ($0.detection?.level ?? .informational) >= least }
                    } ?? subset
                do {
                    if !sent.isEmpty {
                        // Nothing lost: a sink's position moves only after it accepted the batch.
                        try await sink.deliver(sent)
                        heartbeat?.beat()
                        metrics?.eventsSent(sink: sink.name).increment(by: Int64(sent.count))
                    }
                    if !subset.isEmpty { delivering.append(sink) }
                } catch {
                    progress.fail(sink, "\(error)", now: now, logger, metrics)
                    continue
                }
                for index in indices {
                    given[index - batch.startIndex] = true
                    if batch[index].effectiveAt < completeBefore { late[index - batch.startIndex] = true }
                }
                // Never past what the slice covers: a server may list an event outside the
                // range asked for (a late stamp, milliseconds, a filter ignored), and the ground
                // between the slice's end and that event has not been read yet.
                progress.state.positions[sink.name]!.accept(
                    subset, through: batch.last.map { min($0.effectiveAt, bound) })
            }
            if final, offset == events.count, let end {
                for sink in progress.active { progress.state.positions[sink.name]!.complete(before: end) }
            }
            for sink in progress.active { progress.state.positions[sink.name]!.prune(lookback: settings.lookback) }
            progress.report.delivered += given.count { $0 }
            progress.report.lateEvents += late.count { $0 }
            metrics?.lateEvents.increment(by: Int64(late.count { $0 }))
            if let newest = batch.last?.effectiveAt, !delivering.isEmpty {
                progress.report.newestDelivered = max(progress.report.newestDelivered ?? newest, newest)
            }
            if delivering.isEmpty {
                if progress.positionTimes() != times {
                    progress.state.updatedAt = now
                    progress.unsaved = true
                }
            } else {
                progress.state.updatedAt = now
                // In memory first: the batch *was* delivered. If the write fails, the runner
                // keeps this state and delivers nothing more until it is written.
                progress.unsaved = true
                try write(&progress.state, as: .batch)
                progress.unsaved = false
                progress.batchWritten = true
                for sink in delivering where !shared.contains(sink.name) { await settle(sink) }
                // A batch only local sinks took moves the shared positions over ground they did
                // not need: written with the next that matters, or at the end of the cycle.
                let settling = delivering.filter { shared.contains($0.name) }
                if !settling.isEmpty { await recordShared(&progress, settling: settling) }
            }
            if offset < events.count, Task.isCancelled { throw CancellationError() }
        } while offset < events.count && !progress.active.isEmpty
    }

    /// The batch with each event the rules matched marked (`AuditEvent.marked`), counted by
    /// rule and level; the same events where no rule is in force.
    func mark(_ events: ArraySlice<AuditEvent>) -> [AuditEvent] {
        var marked = Array(events)
        guard let detector else { return marked }
        let found = detector.evaluate(events)
        guard !found.isEmpty else { return marked }
        for (offset, detection) in found { marked[offset] = marked[offset].marked(detection) }
        metrics?.detected(found.map(\.detection))
        return marked
    }

    /// Writes the state (to `writer`), counts it, and shows each local sink's position (a
    /// shared sink's is shown when the group has it, `recordShared`: a standby's copy is stale).
    func write(_ state: inout AuditState, as kind: StateStore.Write) throws {
        try writer.save(state, kind)
        state.markWritten()
        guard kind != .cycleEnd else { return }
        metrics?.stateWrites.increment()
        show(state.positions.filter { !shared.contains($0.key) })
    }

    func show(_ positions: [String: SinkPosition]) {
        guard let metrics else { return }
        for (name, position) in positions {
            metrics.sinkPosition(sink: name).set(Double(position.completeBefore))
        }
    }

    /// Writes the shared sinks' positions to the group, fenced by this member's term (`Coordination.record`),
    /// when it leads; `settling` (shared sinks that delivered) are told once it is written.
    /// Fenced, or the database not answering, the shared sinks sit out the rest of the
    /// cycle: another member may lead now, and a position that is not written must not run
    /// further ahead of the group's. The local sinks go on either way.
    func recordShared(_ progress: inout Progress, settling: [any Sink]) async {
        guard let coordination, progress.leading else { return }
        let positions = progress.state.positions.filter { shared.contains($0.key) }
        switch await coordination.record(positions) {
        case .recorded:
            show(positions)
            progress.sharedBehind = false
            for sink in settling { await settle(sink) }
        case .fenced:
            // The coordination said so in the log; memory's shared positions are the group's
            // no more, and are read from it again at the next term.
            progress.sharedBehind = false
            progress.standDown(shared)
        case .failed(let reason):
            progress.sharedBehind = true
            logger.warning(
                "cannot write the shared positions to the group; the shared sinks wait until it answers (the local sinks go on)",
                metadata: ["error": "\(reason)"])
            progress.standDown(shared)
        }
    }

    /// The sink's position is on disk: its destination's record of the batch is no longer needed.
    func settle(_ sink: any Sink) async {
        do {
            try await sink.positionRecorded()
        } catch {
            logger.warning(
                "cannot clear the sink's record of delivered events; it is read again at the next cycle",
                metadata: ["sink": "\(sink.name)", "error": "\(error)"])
        }
    }
}

extension PollCycle.Progress {
    /// Each position's T and floor: what an empty slice can move.
    func positionTimes() -> [String: [Int64]] {
        state.positions.mapValues { [$0.completeBefore, $0.recentSince] }
    }

    /// This member no longer leads in this cycle: the shared sinks leave it (not a failure).
    mutating func standDown(_ shared: Set<String>) {
        leading = false
        active.removeAll { shared.contains($0.name) }
    }

    /// A sink failed: it keeps its position, records why (written at the latest at the end of
    /// the cycle, for `state show`), and sits out the rest of the cycle.
    mutating func fail(_ sink: any Sink, _ reason: String, now: Int64, _ logger: Logger, _ metrics: DaemonMetrics?) {
        metrics?.sinkErrors(sink: sink.name).increment()
        state.positions[sink.name]?.fail(reason, at: now)
        state.updatedAt = now
        unsaved = true
        report.sinkFailures[sink.name] = reason
        active.removeAll { $0.name == sink.name }
        logger.error(
            "sink failed, its position did not move; the other sinks go on, and it is retried at the next poll",
            metadata: ["sink": "\(sink.name)", "error": "\(reason)"])
    }
}
