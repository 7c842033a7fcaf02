extension Configuration {
    /// The keys whose values differ from `old`, named as in `config.yaml`, for the reload log
    /// (`ConfigurationKey.all`; a key set one child at a time, `api.filters`, named whole).
    public func changedKeys(from old: Configuration, environment: [String: String] = [:]) -> [String] {
        let keys = ConfigurationKey.all
        return keys.filter { key in
            !keys.contains { key.path.hasPrefix($0.path + ".") } && key.differs(self, old, environment)
        }.map(\.path)
    }

    /// Why this configuration cannot replace `running` without a restart, or nil if it can.
    ///
    /// The state file records how far one source (base URL, organization, filters) has been
    /// delivered, and the running daemon holds its lock; a reload that changed either would
    /// deliver another source's events against this state, or write a second state file
    /// behind the lock's back. Such a change is refused and the old configuration kept
    /// (`ConfigurationKey.fixedAtStart`).
    public func reloadRefusal(replacing running: Configuration, environment: [String: String]) -> String? {
        let keys = ConfigurationKey.all.filter { $0.fixedAtStart && $0.differs(self, running, environment) }.map(\.path)
        guard !keys.isEmpty else { return nil }
        let list = keys.joined(separator: ", ")
        return "\(list) cannot change on reload: the state file belongs to the source and path the daemon "
            + "started with, and the metrics endpoint is bound at start; restart the daemon to apply "
            + "\(keys.count == 1 ? "this change" : "these changes") "
            + "(a different source needs its own state file, see 'state reset' in docs/operations.md)"
    }
}
