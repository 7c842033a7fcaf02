extension Configuration {
    /// The keys whose values differ from `old`, named as in `config.yaml`, for the reload log.
    public func changedKeys(from old: Configuration) -> [String] {
        let comparisons: [(String, Bool)] = [
            ("api.base_url", api.baseURL != old.api.baseURL),
            ("api.admin_key_file", api.adminKeyFile != old.api.adminKeyFile),
            ("api.organization", api.organization != old.api.organization),
            ("api.request_timeout", api.requestTimeout != old.api.requestTimeout),
            ("api.page_size", api.pageSize != old.api.pageSize),
            ("api.include_tenant_events", api.includeTenantEvents != old.api.includeTenantEvents),
            ("api.max_response_bytes", api.maxResponseBytes != old.api.maxResponseBytes),
            ("api.proxy", api.proxy != old.api.proxy),
            ("api.tls.ca_file", api.caFile != old.api.caFile),
            ("api.filters", api.filters.normalized != old.api.filters.normalized),
            ("poll.interval", poll.interval != old.poll.interval),
            ("poll.lookback", poll.lookback != old.poll.lookback),
            ("poll.start_at", poll.startAt != old.poll.startAt),
            ("poll.max_window_events", poll.maxWindowEvents != old.poll.maxWindowEvents),
            ("poll.max_window_bytes", poll.maxWindowBytes != old.poll.maxWindowBytes),
            ("state.path", statePath != old.statePath),
            ("sinks", sinks != old.sinks),
            ("metrics.listen", metricsListen != old.metricsListen),
            ("log.level", logLevel != old.logLevel),
            ("log.format", logFormat != old.logFormat),
        ]
        return comparisons.filter(\.1).map(\.0)
    }

    /// Why this configuration cannot replace `running` without a restart, or nil if it can.
    ///
    /// The state file records how far one source (base URL, organization, filters) has been
    /// delivered, and the running daemon holds its lock; a reload that changed either would
    /// deliver another source's events against this state, or write a second state file
    /// behind the lock's back. Such a change is refused and the old configuration kept.
    public func reloadRefusal(replacing running: Configuration, environment: [String: String]) -> String? {
        var keys: [String] = []
        if api.baseURL != running.api.baseURL { keys.append("api.base_url") }
        if api.organization != running.api.organization { keys.append("api.organization") }
        // As the state compares them (`StateSource`): as sets, so that the same filters in
        // another order or with a repeat are no change.
        if api.filters.normalized != running.api.filters.normalized { keys.append("api.filters") }
        // The endpoint is bound once, before READY=1; moving it is a restart.
        if metricsListen != running.metricsListen { keys.append("metrics.listen") }
        if resolvedStatePath(environment: environment) != running.resolvedStatePath(environment: environment) {
            keys.append("state.path")
        }
        guard !keys.isEmpty else { return nil }
        let list = keys.joined(separator: ", ")
        return "\(list) cannot change on reload: the state file belongs to the source and path the daemon "
            + "started with, and the metrics endpoint is bound at start; restart the daemon to apply "
            + "\(keys.count == 1 ? "this change" : "these changes") "
            + "(a different source needs its own state file, see 'state reset' in docs/operations.md)"
    }
}
