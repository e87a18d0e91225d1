import Foundation
import GRDB

extension SampleStore {
    /// Where a training example's label came from.
    public enum LabelSource: String, Sendable, Equatable {
        /// An operator's ground truth (`…/labels`).
        case groundTruth
        /// The full model's verdict, used as a teacher label where no ground truth arrived.
        case verdict
    }

    /// A stored hard example ready to train on: the window the edge escalated and its best known label.
    public struct TrainingExample: Sendable, Equatable {
        /// The escalation id.
        public var id: UUID
        /// The device that escalated it.
        public var device: String
        /// The edge model version that was unsure; the window is in that model's standardization.
        public var edgeModel: String
        /// Seconds since 1970 when it was received.
        public var receivedAt: Double
        /// Channels of the window.
        public var channels: Int
        /// Samples of the window.
        public var length: Int
        /// The window, sample-major, standardized as the edge model saw it.
        public var window: [Float]
        /// The ground truth if known, else the verdict's class.
        public var label: Int
        /// Which of the two `label` is.
        public var source: LabelSource
    }

    /// The ground-truth class of `id`, if one was recorded.
    public func label(for id: UUID) throws -> Int? {
        try pool.read { db in
            try Int.fetchOne(db, sql: "SELECT label FROM label WHERE escalation_id = ?", arguments: [id.uuidString])
        }
    }

    /// Hard examples to train on: every escalation with a ground-truth label or a verdict, oldest first. A device's
    /// label counts only for its own escalation (same fleet and device).
    ///
    /// - Parameters:
    ///   - receivedAfter: only escalations received after this time (seconds since 1970), or all.
    ///   - limit: at most this many (the newest are dropped), or all.
    /// - Returns: the examples, and how many stored payloads could not be decoded (counted, skipped).
    public func trainingExamples(receivedAfter: Double? = nil, limit: Int? = nil) throws -> (
        examples: [TrainingExample], undecodable: Int
    ) {
        let rows = try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT e.id, e.device, e.edge_model, e.received_at, e.payload, e.verdict_label, l.label
                    FROM escalation e LEFT JOIN label l ON l.escalation_id = e.id AND \(labelMatchesEscalation)
                    WHERE (l.label IS NOT NULL OR e.verdict_label IS NOT NULL) AND e.received_at > ?
                    ORDER BY e.received_at, e.id LIMIT ?
                    """,
                arguments: [receivedAfter ?? -Double.greatestFiniteMagnitude, limit ?? -1])
        }
        var examples = [TrainingExample]()
        var undecodable = 0
        for row in rows {
            let data: Data = row["payload"]
            guard let id = UUID(uuidString: row["id"]),
                let example = TrainingExample(
                    id: id, device: row["device"], edgeModel: row["edge_model"], receivedAt: row["received_at"],
                    payload: Array(data), groundTruth: row["label"], verdict: row["verdict_label"])
            else {
                undecodable += 1
                continue
            }
            examples.append(example)
        }
        return (examples, undecodable)
    }

    /// Escalations received after `time` (seconds since 1970), answered or not, audits not counted.
    public func hardExampleCount(receivedAfter time: Double) throws -> Int {
        try pool.read { db in
            try Int.fetchOne(
                db,
                sql: """
                    SELECT COUNT(*) FROM escalation
                    WHERE received_at > ? AND substr(payload, 1, 4) <> \(AuditEstimate.sqliteStoredPrefix)
                    """, arguments: [time]) ?? 0
        }
    }

    /// Labels that label a stored escalation and did so first after `time` (seconds since 1970): recorded after
    /// it, or recorded earlier for an escalation that arrived after it. A label whose escalation is not stored (or
    /// is another device's) does not count.
    public func labelCount(recordedAfter time: Double) throws -> Int {
        try pool.read { db in
            try Int.fetchOne(
                db,
                sql: """
                    SELECT COUNT(*) FROM label l JOIN escalation e ON e.id = l.escalation_id
                    WHERE \(labelMatchesEscalation) AND max(l.recorded_at, e.received_at) > ?
                    """, arguments: [time]) ?? 0
        }
    }
}
