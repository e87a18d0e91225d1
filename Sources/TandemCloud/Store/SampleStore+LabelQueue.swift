import Foundation
import GRDB

extension SampleStore {
    /// An answered escalation nobody has labelled: what the label queue ranks (``LabelQueue``).
    public struct UnlabelledEscalation: Sendable, Equatable {
        /// The escalation id.
        public var id: UUID
        /// The fleet of its topic, if known.
        public var fleet: String?
        /// The device that escalated it.
        public var device: String
        /// The stream it came from.
        public var stream: String
        /// The edge model's class.
        public var edgeLabel: Int
        /// The edge model's confidence, 0…1.
        public var edgeConfidence: Double
        /// The full model's class.
        public var verdictLabel: Int
        /// The full model's class probabilities.
        public var probabilities: [Float]
        /// Seconds since 1970 when it was received.
        public var receivedAt: Double
        /// The window's start on the device's clock, if it said.
        public var windowStart: Double?

        /// Creates a row.
        public init(
            id: UUID, fleet: String?, device: String, stream: String, edgeLabel: Int, edgeConfidence: Double,
            verdictLabel: Int, probabilities: [Float], receivedAt: Double, windowStart: Double?
        ) {
            self.id = id
            self.fleet = fleet
            self.device = device
            self.stream = stream
            self.edgeLabel = edgeLabel
            self.edgeConfidence = edgeConfidence
            self.verdictLabel = verdictLabel
            self.probabilities = probabilities
            self.receivedAt = receivedAt
            self.windowStart = windowStart
        }
    }

    /// The most recent answered escalations without a label, newest first, at most `limit`.
    public func unlabelled(limit: Int) throws -> [UnlabelledEscalation] {
        try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT e.id, e.fleet, e.device, e.stream, e.edge_label, e.edge_confidence, e.verdict_label,
                    e.verdict_probabilities, e.received_at, e.window_start FROM escalation e
                    WHERE e.answered_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM label l WHERE l.escalation_id = e.id)
                    ORDER BY e.received_at DESC LIMIT ?
                    """,
                arguments: [max(0, limit)]
            ).compactMap { row in
                let id: String = row["id"]
                let text: String = row["verdict_probabilities"] ?? ""
                guard let uuid = UUID(uuidString: id), let verdict: Int = row["verdict_label"] else { return nil }
                return UnlabelledEscalation(
                    id: uuid, fleet: row["fleet"], device: row["device"], stream: row["stream"],
                    edgeLabel: row["edge_label"], edgeConfidence: row["edge_confidence"], verdictLabel: verdict,
                    probabilities: Self.probabilities(fromText: text), receivedAt: row["received_at"],
                    windowStart: row["window_start"])
            }
        }
    }

    /// `[0.1,0.9]` as stored in the SQLite verdict column.
    static func probabilities(fromText text: String) -> [Float] {
        text.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).split(separator: ",").compactMap { Float($0) }
    }
}
