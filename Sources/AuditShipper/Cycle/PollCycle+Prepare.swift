import Logging

extension PollCycle {
    /// Before anything is read: every configured sink gets a position (new ones where their
    /// configuration says, removed ones are dropped), a sink's destination that can tell what
    /// it holds of an interrupted batch says so, and every sink must answer its check (a
    /// probe, cheap) before it is given anything: a sink that is down sits the cycle out, and
    /// its backlog is not read at every poll while it is.
    func prepare(_ progress: inout Progress, now: Int64) async throws {
        let changes = progress.state.reconcile(sinks: sinks.map(\.name), starts: sinkStarts, kinds: sinkKinds)
        for (name, old) in changes.renamed.sorted(by: { $0.key < $1.key }) {
            logger.notice(
                "sink's default name changed with its url or path; it keeps its position and its backlog",
                metadata: ["sink": "\(name)", "sink.was": "\(old)"])
        }
        for name in changes.added {
            let position = progress.state.positions[name]!
            let metadata: Logger.Metadata = [
                "sink": "\(name)", "sink.complete_before": "\(TimeSpec.format(position.completeBefore))",
            ]
            // A sink of its kind left in the same change, and which was which cannot be told.
            if let kind = sinkKinds[name], changes.removed.contains(where: { $0.hasPrefix(kind) }) {
                logger.warning(
                    "sink has no position yet and starts where the others are: what a removed sink of its kind had not delivered is not sent to it; to keep a position when a url or path changes, give the sink a name:",
                    metadata: metadata)
            } else {
                logger.notice("sink has no position yet, starting it", metadata: metadata)
            }
        }
        for name in changes.removed {
            logger.notice("sink is no longer configured, its position is dropped", metadata: ["sink": "\(name)"])
        }
        let newTerm = await lead(&progress)
        var recorded: [any Sink] = []
        for sink in sinks {
            // A standby leaves the shared sinks to the lease's holder, receipts and all: what
            // this member's last term left of them is folded in when it leads again.
            if shared.contains(sink.name), !progress.leading { continue }
            if await admit(sink, &progress, now: now) { recorded.append(sink) }
        }
        if newTerm { sharedFirst(&progress) }
        if !changes.isEmpty || !recorded.isEmpty {
            progress.state.updatedAt = now
            try write(&progress.state, as: .whole)
            progress.unsaved = false
            for sink in recorded where !shared.contains(sink.name) { await settle(sink) }
        }
        if progress.leading, progress.sharedBehind || recorded.contains(where: { shared.contains($0.name) }) {
            await recordShared(&progress, settling: recorded.filter { shared.contains($0.name) })
        }
    }

    /// Folds what the sink's destination holds of an interrupted batch into its position, and
    /// checks it: a sink that passes takes part in the cycle. Returns whether it had receipts.
    func admit(_ sink: any Sink, _ progress: inout Progress, now: Int64) async -> Bool {
        let receipts: [Receipt]
        do {
            receipts = try await sink.receipts()
        } catch {
            progress.fail(sink, "cannot tell what the destination already holds: \(error)", now: now, logger, metrics)
            return false
        }
        if !receipts.isEmpty {
            let held = progress.state.positions[sink.name]!.hold(receipts)
            logger.notice(
                "sink already holds events of an interrupted batch; they are not sent again",
                metadata: ["sink": "\(sink.name)", "sink.held": "\(held)"])
        }
        do {
            try await sink.check()
        } catch {
            progress.fail(sink, "\(error)", now: now, logger, metrics)
            return !receipts.isEmpty
        }
        progress.active.append(sink)
        return !receipts.isEmpty
    }

    /// At the start of a term, local sinks further behind than the shared ones sit this cycle
    /// out, and the next starts at once (`CycleReport.again`): a member that takes over while
    /// its own file is still catching up gives the team's SIEM what it missed first, instead
    /// of after its file's backlog. Not a failure: their positions stay as they are.
    func sharedFirst(_ progress: inout Progress) {
        let lookback = settings.lookback
        let sharedStart = progress.active.filter { shared.contains($0.name) }
            .compactMap { progress.state.positions[$0.name]?.windowStart(lookback: lookback) }.min()
        guard let sharedStart else { return }
        let behind = progress.active.filter {
            !shared.contains($0.name)
                && (progress.state.positions[$0.name]?.windowStart(lookback: lookback) ?? .max) < sharedStart
        }
        guard !behind.isEmpty else { return }
        logger.info(
            "a new term: the shared sinks catch up first, the local sinks further behind follow in the next cycle",
            metadata: ["sinks": "\(behind.map(\.name).joined(separator: ", "))"])
        progress.active.removeAll { sink in behind.contains { $0.name == sink.name } }
        progress.report.again = true
    }

    /// Asks the group whether this member leads (`progress.leading`); returns whether a term
    /// begins. At a new term the shared positions are the group's, whatever this member had in
    /// memory or in its file; a shared sink the group has no position for yet keeps this
    /// member's (from before coordination was configured, or where `reconcile` started it),
    /// written to the group before anything is delivered.
    func lead(_ progress: inout Progress) async -> Bool {
        progress.leading = false
        guard let coordination, !shared.isEmpty else { return false }
        switch await coordination.lead() {
        case .standby(_, let positions):
            show(positions.filter { shared.contains($0.key) })
            return false
        case .leads(let term, let positions):
            progress.leading = true
            guard let positions else { return false }
            var taken: [String] = []
            for name in shared.sorted() {
                if let position = positions[name] {
                    progress.state.positions[name] = position
                    taken.append(name)
                } else {
                    logger.notice(
                        "the group has no position for this shared sink yet; it starts from this member's",
                        metadata: [
                            "sink": "\(name)",
                            "sink.complete_before":
                                "\(progress.state.positions[name].map { TimeSpec.format($0.completeBefore) } ?? "none")",
                        ])
                }
            }
            if !taken.isEmpty {
                logger.info(
                    "took the shared sinks' positions from the group",
                    metadata: ["coordination.term": "\(term)", "sinks": "\(taken.joined(separator: ", "))"])
            }
            // Written at once: the group holds every shared position from the term's start.
            progress.sharedBehind = true
            return true
        }
    }
}
