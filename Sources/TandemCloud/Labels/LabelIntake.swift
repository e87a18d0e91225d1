import Foundation
import Logging
import Synchronization
import TandemProtocol

/// Stores ground-truth labels, from operators (`POST /v1/labels` with the API token) and from devices (their own
/// `tandem/v1/{fleet}/{device}/labels` topic), in the sample store (``EscalationStore/recordLabels(_:from:at:)``).
///
/// A label names a class of the full model; it is stored as that class's index. Authority comes from where a label
/// arrived, never from what it says: an operator may label any escalation id (stored yet or not); a label on a
/// device's topic is that device's, and may label only that device's own escalations — one for an escalation of
/// another fleet or device is refused, and one for an id not stored yet is kept but counts (for training, the
/// retraining trigger and the canary's accuracy) only once an escalation of that id arrives from the same fleet and
/// device. Each device's labels are rate-limited (by its topic). A bad label is refused with a reason, counted by
/// reason and logged (rate-limited); it never stops the worker.
public final class LabelIntake: Sendable {
    /// The full model's class names, in index order.
    public let classNames: [String]
    let store: any EscalationStore
    let metrics: CloudMetrics?
    let logger: Logger
    let limiter: DeviceRateLimiter?
    private let counts = Mutex(Counts())

    /// Labels stored and refused so far.
    public struct Counts: Sendable, Equatable {
        /// Labels stored (pending ones included).
        public var stored = 0
        /// Of those, labels for an escalation id not stored yet: they count once it arrives from their device.
        public var pending = 0
        /// Labels refused, by reason.
        public var rejected: [LabelError.Code: Int] = [:]
    }

    /// Creates an intake that resolves class names against `classNames` and records into `store`.
    ///
    /// - Parameters:
    ///   - deviceLimit: Each device's labels over MQTT (by the fleet and device of the topic); nil: no limit.
    ///   - limitReportSeconds: Seconds between two log lines about one device's labels refused for its limit.
    ///   - logger: Where refusals are logged (rate-limited), with the `device` of a label's topic added.
    public init(
        classNames: [String], store: any EscalationStore, metrics: CloudMetrics? = nil,
        deviceLimit: RateLimit? = nil, limitReportSeconds: Double = 60, logger: Logger
    ) {
        self.classNames = classNames
        self.store = store
        self.metrics = metrics
        self.logger = logger
        limiter = deviceLimit.map { DeviceRateLimiter(limit: $0, reportInterval: limitReportSeconds) }
    }

    /// The counts now.
    public var statistics: Counts { counts.withLock { $0 } }

    /// Reads and stores one label message from a device's labels topic; a bad one is counted and logged, never
    /// thrown.
    ///
    /// - Returns: whether it was stored.
    @discardableResult
    public func receive(payload: [UInt8], topic: String) -> Bool {
        guard let address = DeviceTopicAddress(topic: topic), address.kind == .labels else {
            refuse(LabelError(.malformed, "not a device's labels topic"), source: .mqtt, from: topic)
            return false
        }
        if let limiter, case .refuse(let report) = limiter.take(fleet: address.fleet, device: address.device) {
            refuse(LabelError(.rateLimited, "over the device's limit"), source: .mqtt, from: topic, log: false)
            if let report {
                let line =
                    "device \(escaping: address.fleet)/\(escaping: address.device) is over its label limit "
                    + "(\(limiter.limit)): \(report) label(s) refused since the last report"
                logger.warning("\(line)", metadata: ["device": .escaping(address.device)])
            }
            return false
        }
        do {
            try record(
                [try GroundTruthLabel(decoding: payload)], from: .device(fleet: address.fleet, device: address.device),
                source: .mqtt)
            return true
        } catch {
            refuse(error, source: .mqtt, from: topic)
            return false
        }
    }

    /// Checks every label, then stores them all, as an operator's (`POST /v1/labels`).
    ///
    /// - Throws: ``LabelError`` for the first bad label (then none is stored) or a store failure; it has been
    ///   counted and logged.
    public func submit(_ labels: [GroundTruthLabel], from client: String) throws(LabelError) {
        do {
            try record(labels, from: .operator, source: .http)
        } catch {
            refuse(error, source: .http, from: client)
            throw error
        }
    }

    /// Checks a time-range label and labels every stored escalation in its range, as an operator's
    /// (`POST /v1/labels` in its time-range form; ``EscalationStore/labelRange(_:label:at:)``).
    ///
    /// - Returns: How many escalations were labelled (0 when none of that device and stream is in the range).
    /// - Throws: ``LabelError`` (`unknownClass`, `store`); it has been counted and logged.
    public func submit(_ range: TimeRangeLabel, from client: String) throws(LabelError) -> Int {
        do throws(LabelError) {
            let labelled = try recordRange(range)
            counts.withLock { $0.stored += labelled }
            metrics?.labelStored(source: .http, count: labelled)
            return labelled
        } catch {
            refuse(error, source: .http, from: client)
            throw error
        }
    }

    private func recordRange(_ range: TimeRangeLabel) throws(LabelError) -> Int {
        guard let classIndex = classNames.firstIndex(of: range.label) else {
            throw LabelError(
                .unknownClass,
                "class '\(range.label.prefix(64))' is not a class of the full model ("
                    + classNames.joined(separator: ", ") + ")")
        }
        do {
            return try store.labelRange(range, label: classIndex, at: Date().timeIntervalSince1970)
        } catch {
            throw LabelError(.store, "the sample store refused the labels: \(error)")
        }
    }

    /// Counts and logs a refusal that happened before the labels were read (`POST` bodies that are not JSON).
    func refuse(_ error: LabelError, source: CloudMetrics.LabelSource, from origin: String, log: Bool = true) {
        let total = counts.withLock {
            $0.rejected[error.code, default: 0] += 1
            return $0.rejected.values.reduce(0, +)
        }
        metrics?.labelRejected(source: source, reason: error.code)
        if log && (total <= 20 || total.isMultiple(of: 1000)) {
            logger.warning(
                "label from \(escaping: origin) refused (\(error.code.rawValue), \(total) refused so far): \(escaping: error.message)",
                metadata: DeviceTopicAddress(topic: origin).map { ["device": .escaping($0.device)] })
        }
    }

    private func record(
        _ labels: [GroundTruthLabel], from origin: SampleStore.LabelOrigin, source: CloudMetrics.LabelSource
    ) throws(LabelError) {
        var resolved: [(UUID, Int)] = []
        for (index, label) in labels.enumerated() {
            guard let classIndex = classNames.firstIndex(of: label.label) else {
                let place = labels.count > 1 ? "element \(index): " : ""
                throw LabelError(
                    .unknownClass,
                    place + "label '\(label.label.prefix(64))' is not a class of the full model ("
                        + classNames.joined(separator: ", ") + ")")
            }
            resolved.append((label.escalationId, classIndex))
        }
        let outcomes: [SampleStore.LabelOutcome]
        do {
            outcomes = try store.recordLabels(resolved, from: origin, at: Date().timeIntervalSince1970)
        } catch {
            throw LabelError(.store, "the sample store refused the labels: \(error)")
        }
        // Only a device's labels are refused by the store, and a device sends one label per message.
        for (label, outcome) in zip(labels, outcomes) {
            switch outcome {
            case .otherDevice:
                throw LabelError(.otherDevice, "escalation \(label.escalationId) is not one of this device's")
            case .labelledByOthers:
                throw LabelError(
                    .labelledByOthers, "escalation \(label.escalationId) was labelled by an operator or its own device")
            case .matched, .pending: continue
            }
        }
        let pending = outcomes.filter { $0 == .pending }.count
        counts.withLock {
            $0.stored += resolved.count
            $0.pending += pending
        }
        metrics?.labelStored(source: source, count: resolved.count)
    }
}
