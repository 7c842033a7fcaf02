import Dispatch

/// The poll schedule: a `DispatchSourceTimer` seen as an `AsyncStream` of ticks.
///
/// The first tick comes at once. Ticks that fire while a cycle is still running collapse
/// into one pending tick (`bufferingNewest(1)`), so two cycles never run at once and a slow
/// cycle is followed by exactly one more, not by a burst.
public enum PollTimer {
    public static func ticks(every interval: Duration) -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let milliseconds = Int(
            interval.components.seconds * 1000 + interval.components.attoseconds / 1_000_000_000_000_000)
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "openai-auditd.poll-timer"))
        timer.schedule(
            deadline: .now(), repeating: .milliseconds(max(1, milliseconds)),
            leeway: .milliseconds(max(1, milliseconds / 50)))
        timer.setEventHandler { continuation.yield() }
        let box = TimerBox(timer: timer)
        continuation.onTermination = { _ in box.timer.cancel() }
        timer.resume()
        return stream
    }

    /// The timer lives as long as the stream; cancelling it is thread-safe.
    private final class TimerBox: @unchecked Sendable {
        let timer: any DispatchSourceTimer
        init(timer: any DispatchSourceTimer) { self.timer = timer }
    }
}
