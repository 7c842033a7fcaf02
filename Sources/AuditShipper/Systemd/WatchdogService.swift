import Logging
import ServiceLifecycle

/// Sends `WATCHDOG=1` at half of `WATCHDOG_USEC`, from the poll loop's own thread.
///
/// The pings run on the cycle's executor, so a thread stuck in a sink write or a busy loop
/// sends none; and they stop when the loop has shown no life (tick, page, batch) for
/// the heartbeat's patience (two poll intervals and half an hour), which covers a cycle waiting forever on something that never answers.
/// systemd then restarts the daemon, which resumes from its state.
public struct WatchdogService: Service {
    let notifier: SystemdNotifier
    let interval: Duration
    let heartbeat: Heartbeat
    let executor: any TaskExecutor
    let logger: Logger

    public init(
        notifier: SystemdNotifier, interval: Duration, heartbeat: Heartbeat, executor: any TaskExecutor, logger: Logger
    ) {
        self.notifier = notifier
        self.interval = interval
        self.heartbeat = heartbeat
        self.executor = executor
        self.logger = logger
    }

    public func run() async throws {
        await withTaskExecutorPreference(executor) {
            var warned = false
            for await _ in PollTimer.ticks(every: interval).cancelOnGracefulShutdown() {
                if !heartbeat.isStale {
                    notifier.watchdog()
                    warned = false
                } else if !warned {
                    warned = true
                    logger.critical(
                        "the poll loop shows no progress, withholding the watchdog ping",
                        metadata: ["watchdog.stale_seconds": "\(heartbeat.age.components.seconds)"])
                }
            }
        }
    }
}
