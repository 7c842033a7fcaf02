#if canImport(Glibc)
    import Glibc
#endif

extension Invocation {
    /// `run`: the daemon under a ServiceGroup until SIGTERM or SIGINT (the batch in flight is
    /// finished and the state written); SIGHUP reloads the configuration (`DaemonServices`).
    public func run() async throws {
        // SIGHUP must not end the daemon (its default action) even before the reload
        // service listens; UnixSignals sees it either way.
        signal(SIGHUP, SIG_IGN)
        let (daemon, failing) = try await startDaemon(keepsPositions: true, pollsOn: true)
        let slot = DaemonSlot(daemon)
        // The slot shuts down whichever daemons are live at the end (the HTTP clients and
        // sink connections); the store holds the state lock until then.
        try await Self.closing(slot) {
            let (store, state) = try daemon.openState(environment: environment, now: Daemon.now())
            let file = configurationPath
            let environment = environment
            let reloading = DaemonServices.Reloading(
                requests: await DaemonServices.hangups(),
                load: { try ConfigurationLoader.load(file: file, environment: environment) },
                start: { configuration, previous in
                    try await with(configuration).startDaemon(keepsPositions: true, pollsOn: true, replacing: previous)
                        .0
                },
                accepted: {
                    logSettings.reloaded(level: $0.logLevel, format: $0.logFormat.resolved(environment: environment))
                })
            let services = try await DaemonServices(
                slot: slot, store: store, state: state, environment: environment, reloading: reloading,
                failing: failing.map(\.name), logger: logger)
            try await services.run()
            withExtendedLifetime(store) {}
        }
    }

    /// Runs `body`, then shuts down every daemon the slot holds, whether `body` threw or not.
    static func closing(_ slot: DaemonSlot, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch {
            await slot.shutdownAll()
            throw error
        }
        await slot.shutdownAll()
    }
}
