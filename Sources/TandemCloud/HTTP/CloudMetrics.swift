import CoreMetrics
import Foundation
import Prometheus
import TandemFleet
import TandemProtocol

/// The worker's metrics: swift-metrics instruments backed by their own Prometheus registry, rendered by
/// `GET /metrics`.
///
/// The instruments are made with an explicit factory, not the process-wide `MetricsSystem`, so several
/// workers (tests run them in one process) keep separate counts.
public final class CloudMetrics: Sendable {
    /// The Prometheus registry the instruments write to.
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

    /// Escalations received and stored (first deliveries and redeliveries).
    let escalationsReceived: CoreMetrics.Counter
    /// Redeliveries of an escalation id already stored.
    let escalationsDuplicate: CoreMetrics.Counter
    /// Verdicts the broker acknowledged.
    let verdictsAnswered: CoreMetrics.Counter
    /// Verdicts the broker refused (a negative PUBACK).
    let verdictsRefused: CoreMetrics.Counter
    /// Verdicts published before their escalation's deadline (or for one without a deadline).
    let verdictsInTime: CoreMetrics.Counter
    /// Verdicts published after their escalation's deadline but before its last use (they correct a provisional
    /// record).
    let verdictsLate: CoreMetrics.Counter
    /// Escalations per model call.
    let batchSize: CoreMetrics.Recorder
    /// From receipt (or reclaim) of an escalation to the broker's acknowledgement of its verdict.
    let verdictLatency: CoreMetrics.Timer
    /// Escalation rows in the sample store, answered or not.
    let storeEscalations: CoreMetrics.Gauge
    /// Answered escalation rows.
    let storeAnswered: CoreMetrics.Gauge
    /// Ground-truth labels in the sample store.
    let storeLabels: CoreMetrics.Gauge
    /// Escalation rows neither answered nor terminal: work still to do.
    let storePending: CoreMetrics.Gauge
    /// Windows the fleet classified, summed over the devices' status counters (see ``FleetCounterTotals``).
    let fleetWindows: CoreMetrics.Counter
    /// Windows the fleet escalated, likewise.
    let fleetEscalations: CoreMetrics.Counter

    /// Creates the instruments in a new registry.
    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.valueHistogramBuckets["tandem_cloud_batch_size"] = [1, 2, 4, 8, 16, 32, 64, 128, 256]
        factory.durationHistogramBuckets["tandem_cloud_verdict_latency_seconds"] = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
        ]
        self.factory = factory
        escalationsReceived = CoreMetrics.Counter(label: "tandem_cloud_escalations_received_total", factory: factory)
        escalationsDuplicate = CoreMetrics.Counter(label: "tandem_cloud_escalations_duplicate_total", factory: factory)
        verdictsAnswered = CoreMetrics.Counter(label: "tandem_cloud_verdicts_answered_total", factory: factory)
        verdictsRefused = CoreMetrics.Counter(label: "tandem_cloud_verdicts_refused_total", factory: factory)
        verdictsInTime = CoreMetrics.Counter(label: "tandem_cloud_verdicts_in_time_total", factory: factory)
        verdictsLate = CoreMetrics.Counter(label: "tandem_cloud_verdicts_late_total", factory: factory)
        batchSize = CoreMetrics.Recorder(label: "tandem_cloud_batch_size", factory: factory)
        verdictLatency = CoreMetrics.Timer(label: "tandem_cloud_verdict_latency_seconds", factory: factory)
        storeEscalations = CoreMetrics.Gauge(label: "tandem_cloud_store_escalations", factory: factory)
        storeAnswered = CoreMetrics.Gauge(label: "tandem_cloud_store_answered", factory: factory)
        storeLabels = CoreMetrics.Gauge(label: "tandem_cloud_store_labels", factory: factory)
        storePending = CoreMetrics.Gauge(label: "tandem_cloud_store_pending", factory: factory)
        fleetWindows = CoreMetrics.Counter(label: "tandem_cloud_fleet_windows_total", factory: factory)
        fleetEscalations = CoreMetrics.Counter(label: "tandem_cloud_fleet_escalations_total", factory: factory)
        // Present from the start, so a scrape shows 0 rather than nothing.
        for source in LabelSource.allCases { labelStored(source: source, count: 0) }
        for reason in EscalationServer.Refusal.allCases { escalationRejected(reason: reason, count: 0) }
        for source in LabelSource.allCases {
            for reason in LabelError.Code.allCases { labelRejected(source: source, reason: reason, count: 0) }
        }
        for reason in SampleStore.TerminalReason.allCases { escalationsTerminal(reason: reason, count: 0) }
        setRounds([:])
        setRolloutActions([:])
    }

    /// Counts a verdict published before its escalation's deadline, or after it.
    func verdictTimeliness(inTime: Bool) {
        (inTime ? verdictsInTime : verdictsLate).increment()
    }

    /// Sets the recorded retraining rounds by outcome (`tandem_cloud_store_rounds{outcome}`); every outcome
    /// is present, 0 when none ended that way.
    func setRounds(_ counts: [String: Int]) {
        var outcomes = Set(RetrainingService.Outcome.allCases.map(\.rawValue))
        outcomes.formUnion(counts.keys)
        for outcome in outcomes.sorted() {
            CoreMetrics.Gauge(label: "tandem_cloud_store_rounds", dimensions: [("outcome", outcome)], factory: factory)
                .record(counts[outcome] ?? 0)
        }
    }

    /// The rollout actions in the audit log (`tandem_cloud_rollout_actions{action}`: `rollout-start`,
    /// `rollout-step`, `rollout-promote`, `rollout-rollback`), each present from the start.
    func setRolloutActions(_ counts: [String: Int]) {
        for action in RolloutAction.Kind.allCases {
            CoreMetrics.Gauge(
                label: "tandem_cloud_rollout_actions", dimensions: [("action", action.rawValue)], factory: factory
            ).record(counts[action.rawValue] ?? 0)
        }
    }

    /// Counts escalation messages refused, by reason (`tandem_cloud_escalations_rejected_total{reason}`).
    func escalationRejected(reason: EscalationServer.Refusal, count: Int = 1) {
        CoreMetrics.Counter(
            label: "tandem_cloud_escalations_rejected_total", dimensions: [("reason", reason.rawValue)],
            factory: factory
        ).increment(by: count)
    }

    /// Counts stored escalations this worker made terminal, by reason (`tandem_cloud_escalations_terminal_total`).
    func escalationsTerminal(reason: SampleStore.TerminalReason, count: Int) {
        CoreMetrics.Counter(
            label: "tandem_cloud_escalations_terminal_total", dimensions: [("reason", reason.rawValue)],
            factory: factory
        ).increment(by: count)
    }

    /// Sets the terminal rows in the store, by reason (`tandem_cloud_store_terminal{reason}`).
    func setStoreTerminal(_ counts: [SampleStore.TerminalReason: Int]) {
        for reason in SampleStore.TerminalReason.allCases {
            CoreMetrics.Gauge(
                label: "tandem_cloud_store_terminal", dimensions: [("reason", reason.rawValue)], factory: factory
            ).record(counts[reason] ?? 0)
        }
    }

    /// Where a label came from.
    public enum LabelSource: String, Sendable, CaseIterable {
        /// `tandem/v1/{fleet}/{device}/labels`.
        case mqtt
        /// `POST /v1/labels`.
        case http
    }

    /// Counts labels stored.
    func labelStored(source: LabelSource, count: Int = 1) {
        CoreMetrics.Counter(
            label: "tandem_cloud_labels_stored_total", dimensions: [("source", source.rawValue)], factory: factory
        )
        .increment(by: count)
    }

    /// Counts a label refused, by reason.
    func labelRejected(source: LabelSource, reason: LabelError.Code, count: Int = 1) {
        CoreMetrics.Counter(
            label: "tandem_cloud_labels_rejected_total",
            dimensions: [("reason", reason.rawValue), ("source", source.rawValue)], factory: factory
        ).increment(by: count)
    }

    /// Audit escalations and the accuracy estimates from them, by edge model version.
    func setAuditEstimates(_ estimates: [String: AuditEstimate]) {
        for (version, estimate) in estimates {
            let dimensions = [("edge_model", version)]
            CoreMetrics.Gauge(label: "tandem_cloud_audit_escalations", dimensions: dimensions, factory: factory)
                .record(estimate.audits)
            CoreMetrics.Gauge(label: "tandem_cloud_audit_labelled", dimensions: dimensions, factory: factory)
                .record(estimate.labelled)
            if let accuracy = estimate.labelAccuracy {
                CoreMetrics.Gauge(label: "tandem_cloud_audit_label_accuracy", dimensions: dimensions, factory: factory)
                    .record(accuracy)
            }
            if let agreement = estimate.verdictAgreement {
                CoreMetrics.Gauge(
                    label: "tandem_cloud_audit_verdict_agreement", dimensions: dimensions, factory: factory
                ).record(agreement)
            }
        }
    }

    /// Sets the fleet gauges: devices whose latest status says `online`, and the others.
    func setDevices(online: Int, offline: Int) {
        CoreMetrics.Gauge(label: "tandem_cloud_devices", dimensions: [("state", "online")], factory: factory).record(
            online)
        CoreMetrics.Gauge(label: "tandem_cloud_devices", dimensions: [("state", "offline")], factory: factory).record(
            offline)
    }

    /// The Prometheus text exposition of every instrument.
    public func render() -> String { registry.emitToString() }
}
