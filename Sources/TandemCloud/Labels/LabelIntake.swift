import Foundation
import Logging
import Synchronization
import TandemProtocol

/// Stores operators' ground-truth labels, from `tandem/v1/{fleet}/{device}/labels` and `POST /v1/labels`, in the
/// sample store (``SampleStore/recordLabel(id:label:at:)``).
///
/// A label names a class of the full model; it is stored as that class's index. A bad label is refused with a
/// reason, counted by reason and logged (rate-limited); it never stops the worker.
public final class LabelIntake: Sendable {
    /// The full model's class names, in index order.
    public let classNames: [String]
    let store: any EscalationStore
    let metrics: CloudMetrics?
    let logger: Logger
    private let counts = Mutex(Counts())

    /// Labels stored and refused so far.
    public struct Counts: Sendable, Equatable {
        /// Labels stored.
        public var stored = 0
        /// Labels refused, by reason.
        public var rejected: [LabelError.Code: Int] = [:]
    }

    /// Creates an intake that resolves class names against `classNames` and records into `store`.
    ///
    /// - Parameter logger: Where refusals are logged (rate-limited), with the `device` of a label's topic added.
    public init(classNames: [String], store: any EscalationStore, metrics: CloudMetrics? = nil, logger: Logger) {
        self.classNames = classNames
        self.store = store
        self.metrics = metrics
        self.logger = logger
    }

    /// The counts now.
    public var statistics: Counts { counts.withLock { $0 } }

    /// Reads and stores one label message from MQTT; a bad one is counted and logged, never thrown.
    ///
    /// - Returns: whether it was stored.
    @discardableResult
    public func receive(payload: [UInt8], topic: String) -> Bool {
        do {
            try record([try GroundTruthLabel(decoding: payload)], source: .mqtt)
            return true
        } catch {
            refuse(error, source: .mqtt, from: topic)
            return false
        }
    }

    /// Checks every label, then stores them all (`POST /v1/labels`).
    ///
    /// - Throws: ``LabelError`` for the first bad label (then none is stored) or a store failure; it has been
    ///   counted and logged.
    public func submit(_ labels: [GroundTruthLabel], from client: String) throws(LabelError) {
        do {
            try record(labels, source: .http)
        } catch {
            refuse(error, source: .http, from: client)
            throw error
        }
    }

    /// Counts and logs a refusal that happened before the labels were read (`POST` bodies that are not JSON).
    func refuse(_ error: LabelError, source: CloudMetrics.LabelSource, from origin: String) {
        let total = counts.withLock {
            $0.rejected[error.code, default: 0] += 1
            return $0.rejected.values.reduce(0, +)
        }
        metrics?.labelRejected(source: source, reason: error.code)
        if total <= 20 || total.isMultiple(of: 1000) {
            logger.warning(
                "label from \(escaping: origin) refused (\(error.code.rawValue), \(total) refused so far): \(escaping: error.message)",
                metadata: DeviceTopicAddress(topic: origin).map { ["device": .escaping($0.device)] })
        }
    }

    private func record(_ labels: [GroundTruthLabel], source: CloudMetrics.LabelSource) throws(LabelError) {
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
        let now = Date().timeIntervalSince1970
        do {
            try store.recordLabels(resolved, at: now)
        } catch {
            throw LabelError(.store, "the sample store refused the labels: \(error)")
        }
        counts.withLock { $0.stored += resolved.count }
        metrics?.labelStored(source: source, count: resolved.count)
    }
}
