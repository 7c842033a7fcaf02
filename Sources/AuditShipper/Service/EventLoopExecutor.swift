import NIOCore
import NIOPosix

/// Runs a task's jobs on one NIO event loop: the loop that also owns the HTTP connection.
///
/// The cycle spends most of its life waiting for pages; resuming it on the thread that
/// received the page, instead of waking a thread of the global pool, removes a thread hop
/// per request (perf: about a fifth of the CPU went to those wake-ups).
public final class EventLoopExecutor: TaskExecutor, @unchecked Sendable {
    public let eventLoop: any EventLoop

    public init(eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        eventLoop.execute { job.runSynchronously(on: executor) }
    }
}
