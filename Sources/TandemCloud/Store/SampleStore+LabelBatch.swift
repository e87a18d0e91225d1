import Foundation
import GRDB
import TandemProtocol

extension SampleStore {
    /// Records several ground-truth labels from `origin` in one transaction (``EscalationStore/recordLabels(_:from:at:)``).
    ///
    /// An operator's label replaces any earlier one for its id. A device's label is refused when the id is an
    /// escalation of another fleet or device, and never replaces a label an operator or another device gave; for
    /// an id not stored yet it is kept, pending.
    public func recordLabels(_ labels: [(id: UUID, label: Int)], from origin: LabelOrigin, at time: Double) throws
        -> [LabelOutcome]
    {
        let (fleet, device): (String?, String?) =
            switch origin {
            case .operator: (nil, nil)
            case .device(let fleet, let device): (fleet, device)
            }
        return try pool.write { db in
            try labels.map { id, label in
                let owner = try Row.fetchOne(
                    db, sql: "SELECT fleet, device FROM escalation WHERE id = ?", arguments: [id.uuidString])
                let ownEscalation = owner.map {
                    ($0["fleet"] as String?) == fleet && ($0["device"] as String?) == device
                }
                if device != nil, ownEscalation == false { return .otherDevice }
                // A device replaces its own earlier label, or any device's label on its own escalation; never an
                // operator's.
                try db.execute(
                    sql: """
                        INSERT INTO label (escalation_id, label, recorded_at, fleet, device) VALUES (?, ?, ?, ?, ?)
                        ON CONFLICT(escalation_id) DO UPDATE SET label = excluded.label,
                        recorded_at = excluded.recorded_at, fleet = excluded.fleet, device = excluded.device
                        WHERE excluded.device IS NULL OR (label.device IS NOT NULL
                        AND (? OR (label.fleet IS excluded.fleet AND label.device IS excluded.device)))
                        """,
                    arguments: [id.uuidString, label, time, fleet, device, ownEscalation == true])
                guard db.changesCount == 1 else { return .labelledByOthers }
                return owner == nil ? .pending : .matched
            }
        }
    }

    /// Ground-truth labels stored, pending ones included.
    public func labelCount() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM label") ?? 0 }
    }

    /// Labels every stored escalation of `range` as an operator's ground truth (``EscalationStore/labelRange(_:label:at:)``).
    public func labelRange(_ range: TimeRangeLabel, label: Int, at time: Double) throws -> Int {
        try pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO label (escalation_id, label, recorded_at, fleet, device)
                    SELECT id, ?, ?, NULL, NULL FROM escalation
                    WHERE device = ? AND stream = ? AND (? IS NULL OR fleet = ?)
                    AND coalesce(window_start, received_at) BETWEEN ? AND ?
                    ON CONFLICT(escalation_id) DO UPDATE SET label = excluded.label,
                    recorded_at = excluded.recorded_at, fleet = NULL, device = NULL
                    """,
                arguments: [label, time, range.device, range.stream, range.fleet, range.fleet, range.start, range.end])
            return db.changesCount
        }
    }
}
