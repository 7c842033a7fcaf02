import Prometheus
import Synchronization

/// Every metric family the daemon exports, defined in this one place (swift-prometheus traps
/// on two definitions of one family that differ), recorded where the work happens (the API
/// client, the cycle, the sinks, the state), exported by `MetricsServer`.
///
/// Timestamps, not ages: lag is `time() - openai_auditd_sink_position_timestamp_seconds` in
/// PromQL. Label sets known at start (each sink by its name, the usual status codes) are
/// created at 0, so `rate()` and alerts see them before the first event or error.
public final class DaemonMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let apiRetries: Counter
    /// `apiRequestDuration(code: "200")`, kept as `apiRequestsOK` is.
    let apiRequestDurationOK: DurationHistogram
    let apiConcurrency: Gauge
    let eventsReceived: Counter
    let duplicatesDropped: Counter
    let lateEvents: Counter
    let deadLetters: Counter
    let newestEvent: Gauge
    let lastSuccess: Gauge
    let cycleDuration: DurationHistogram
    let stateWrites: Counter
    /// `apiRequests(code: "200")`, kept: nearly every request is counted there, and asking
    /// the registry costs a lookup under its lock (perf, per request).
    let apiRequestsOK: Counter
    /// The newest `effective_at` seen so far: the gauge only ever shows the maximum.
    let newestSeen = Mutex<Int64>(.min)
    /// `openai_auditd_detections_total`'s series met so far, kept for the same reason as
    /// `apiRequestsOK`: a batch of a catch-up counts a dozen of them (perf).
    let detections = Mutex<[DetectionLabels: Counter]>([:])

    struct DetectionLabels: Hashable {
        let rule: String
        let level: SigmaLevel
    }

    /// The status codes whose series exist from the start; others appear when first seen.
    static let knownCodes = ["200", "400", "401", "403", "429", "500", "502", "503", "error"]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), version: String) {
        self.registry = registry
        registry.makeGauge(
            descriptor: Self.family(
                "openai_auditd_build_info", "Always 1; the version of openai-auditd that is running."),
            labels: [("version", version)]
        ).set(to: 1)
        apiRetries = registry.makeCounter(
            descriptor: Self.family(
                "openai_auditd_api_retries_total",
                "Requests to the audit log API that were retried (429, 5xx, timeouts, resets, malformed pages)."))
        apiRequestDurationOK = Self.apiRequestDuration(registry, code: "200")
        apiConcurrency = registry.makeGauge(
            descriptor: Self.family(
                "openai_auditd_api_concurrency",
                "Requests the daemon gives the audit log API at once while it catches up (api.max_concurrency at most)."
            ))
        apiConcurrency.set(1.0)
        eventsReceived = registry.makeCounter(
            descriptor: Self.family(
                "openai_auditd_events_received_total",
                "Events read from the audit log API, repeats of lookback re-reads included."))
        duplicatesDropped = registry.makeCounter(
            descriptor: Self.family(
                "openai_auditd_duplicates_dropped_total",
                "Events read again (lookback, repeats within a walk) that no sink needed."))
        lateEvents = registry.makeCounter(
            descriptor: Self.family(
                "openai_auditd_late_events_total",
                "Events delivered although older than a sink's position: they became visible late."))
        deadLetters = registry.makeCounter(
            descriptor: Self.family(
                "openai_auditd_dead_letters_total",
                "Items of a page that were no readable event (no id, an effective_at that is not a time), set aside in the dead-letter file."
            ))
        newestEvent = registry.makeGauge(
            descriptor: Self.family(
                "openai_auditd_newest_event_timestamp_seconds",
                "The newest effective_at read from the API (Unix seconds)."))
        lastSuccess = registry.makeGauge(
            descriptor: Self.family(
                "openai_auditd_last_success_timestamp_seconds",
                "When a poll cycle last finished without an upstream or state error (Unix seconds)."))
        cycleDuration = registry.makeDurationHistogram(
            descriptor: Self.family(
                "openai_auditd_cycle_duration_seconds", "Time one poll cycle took, catch-up included."),
            buckets: [
                .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5),
                .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(300),
            ])
        stateWrites = registry.makeCounter(
            descriptor: Self.family("openai_auditd_state_writes_total", "Times the state file was written."))
        apiRequestsOK = Self.apiRequests(registry, code: "200")
        for code in Self.knownCodes { _ = apiRequests(code: code) }
    }

    /// Creates the per-sink series at 0 (idempotent: a reload that keeps a sink keeps its series).
    public func register(sinks names: [String]) {
        for name in names {
            _ = eventsSent(sink: name)
            _ = sinkErrors(sink: name)
            _ = eventsOversized(sink: name)
            _ = eventsResent(sink: name)
            _ = sinkPosition(sink: name)
        }
    }

    func apiRequests(code: String) -> Counter { Self.apiRequests(registry, code: code) }

    /// Requests answered with `status`.
    func apiRequests(status: Int) -> Counter {
        status == 200 ? apiRequestsOK : apiRequests(code: String(status))
    }

    /// How long requests answered with `status` took.
    func apiRequestDuration(status: Int) -> DurationHistogram {
        status == 200 ? apiRequestDurationOK : apiRequestDuration(code: String(status))
    }

    func apiRequestDuration(code: String) -> DurationHistogram { Self.apiRequestDuration(registry, code: code) }

    static func apiRequestDuration(_ registry: PrometheusCollectorRegistry, code: String) -> DurationHistogram {
        registry.makeDurationHistogram(
            descriptor: Self.family(
                "openai_auditd_api_request_duration_seconds",
                "Time from sending a request to the audit log API to having its whole page (or its error), by HTTP status."
            ),
            labels: [("code", code)],
            buckets: [
                .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
                .seconds(2.5), .seconds(5), .seconds(10), .seconds(30),
            ])
    }

    static func apiRequests(_ registry: PrometheusCollectorRegistry, code: String) -> Counter {
        registry.makeCounter(
            descriptor: Self.family(
                "openai_auditd_api_requests_total",
                "Requests to the audit log API by HTTP status, or error when no response came."),
            labels: [("code", code)])
    }

    func eventsSent(sink: String) -> Counter {
        registry.makeCounter(
            descriptor: Self.family("openai_auditd_events_sent_total", "Events a sink accepted."),
            labels: [("sink", sink)])
    }

    /// Counts the events of a batch the rules matched, once per rule, with each event's level
    /// (one look-up of the registry per rule and level, not per event).
    func detected(_ found: [Detection]) {
        var counts: [DetectionLabels: Int64] = [:]
        for detection in found {
            for rule in detection.rules { counts[DetectionLabels(rule: rule, level: detection.level), default: 0] += 1 }
        }
        for (labels, count) in counts {
            let counter = detections.withLock { counters in
                if let known = counters[labels] { return known }
                let made = registry.makeCounter(
                    descriptor: Self.family(
                        "openai_auditd_detections_total",
                        "Events a detection rule matched, by rule and the event's level."
                    ),
                    labels: [("rule", labels.rule), ("level", labels.level.description)])
                counters[labels] = made
                return made
            }
            counter.increment(by: count)
        }
    }

    func sinkErrors(sink: String) -> Counter {
        registry.makeCounter(
            descriptor: Self.family(
                "openai_auditd_sink_errors_total", "Times a sink failed a check or a batch; its position did not move."),
            labels: [("sink", sink)])
    }

    func eventsOversized(sink: String) -> Counter {
        registry.makeCounter(
            descriptor: Self.family(
                "openai_auditd_events_oversized_total",
                "Events too large for a datagram transport, sent as a record naming them."), labels: [("sink", sink)])
    }

    func eventsResent(sink: String) -> Counter {
        registry.makeCounter(
            descriptor: Self.family(
                "openai_auditd_events_resent_total",
                "Events sent again because whether the destination took them was not known (a RELP answer or a Splunk acknowledgement that never came)."
            ),
            labels: [("sink", sink)])
    }

    func acksPending(sink: String) -> Gauge {
        registry.makeGauge(
            descriptor: Self.family(
                "openai_auditd_acks_pending",
                "Requests a Splunk HEC sink sent and Splunk has not yet said it indexed."),
            labels: [("sink", sink)])
    }

    func sinkPosition(sink: String) -> Gauge {
        registry.makeGauge(
            descriptor: Self.family(
                "openai_auditd_sink_position_timestamp_seconds",
                "A sink's position: every event before it was delivered to the sink (Unix seconds)."),
            labels: [("sink", sink)])
    }

    /// 1 on the member that holds its group's lease, 0 on the others.
    func coordinationLeader(group: String) -> Gauge {
        registry.makeGauge(
            descriptor: Self.family(
                "openai_auditd_coordination_leader",
                "1 while this member holds its group's lease and delivers to the shared sinks, else 0."),
            labels: [("group", group)])
    }

    /// The lease's term as this member last saw it: it rises at every change of holder.
    func coordinationTerm(group: String) -> Gauge {
        registry.makeGauge(
            descriptor: Self.family(
                "openai_auditd_coordination_term",
                "The term of the group's lease as this member last saw it; it rises at every change of holder."),
            labels: [("group", group)])
    }

    func coordinationRenewals(group: String) -> Counter {
        registry.makeCounter(
            descriptor: Self.family(
                "openai_auditd_coordination_renewals_total",
                "Times this member renewed its lease (a write of the shared positions renews it too)."),
            labels: [("group", group)])
    }

    func coordinationRenewalFailures(group: String) -> Counter {
        registry.makeCounter(
            descriptor: Self.family(
                "openai_auditd_coordination_renewal_failures_total",
                "Times this member, holding the lease, could not renew it: the database did not answer, or another member holds it now."
            ),
            labels: [("group", group)])
    }

    /// Creates the group's series at 0.
    public func register(group: String) {
        _ = coordinationLeader(group: group)
        _ = coordinationTerm(group: group)
        _ = coordinationRenewals(group: group)
        _ = coordinationRenewalFailures(group: group)
    }

    func sawEvent(at effectiveAt: Int64) {
        let newest = newestSeen.withLock { newest in
            newest = max(newest, effectiveAt)
            return newest
        }
        newestEvent.set(Double(newest))
    }

    /// A cycle ended: how long it took, and whether it succeeded (no upstream or state error).
    public func cycleEnded(after duration: Duration, succeeded: Bool, now: Int64) {
        cycleDuration.record(duration)
        if succeeded { lastSuccess.set(Double(now)) }
    }

    /// A family's name and help (swift-prometheus composes names from parts; ours are whole).
    static func family(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// The Prometheus text format (0.0.4) of every family.
    public func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}
