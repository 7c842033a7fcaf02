extension Invocation {
    /// `check`: the configuration (already read), one `limit=1` request, every sink's check
    /// and the state file's line; each part that passes is handed to `report` as one line.
    /// Throws at the first part that fails (the API's error, or `SinkError.cannotOpen`).
    public func check(report: (String) -> Void) async throws {
        let daemon = try Daemon(configuration: configuration, key: try key(), logger: logger)
        try await daemon.closing {
            try await daemon.checkUpstream()
            let route = daemon.proxy.map { "through the proxy \($0)" } ?? "no proxy"
            report("api: ok (\(configuration.api.baseURL), \(route))")
            let failing = await daemon.failingSinks()
            guard failing.isEmpty else {
                throw SinkError.cannotOpen(Dictionary(failing, uniquingKeysWith: { first, _ in first }))
            }
            report("sinks: ok (\(daemon.sinks.map(\.name).joined(separator: ", ")))")
            report("state: \(try StateReport.describeBriefly(path: statePath, configuration: configuration))")
            if let detector = daemon.detector {
                let disabled = configuration.detections.disable.count
                report(
                    "detections: ok (\(detector.rules.count) rules and \(detector.correlations.count) correlations in force\(disabled > 0 ? ", \(disabled) disabled" : ""))"
                )
            } else {
                report("detections: off")
            }
            if let coordination = daemon.coordination {
                // Connects, makes or checks the tables and the rights on them, and reads the lease.
                let status = try await coordination.status()
                let holder =
                    status.held
                    ? "held by \(status.holder ?? "?") in term \(status.term)"
                    : "free (no member holds it now)"
                report("coordination: ok (group \(status.group), lease \(holder))")
            }
        }
    }
}
