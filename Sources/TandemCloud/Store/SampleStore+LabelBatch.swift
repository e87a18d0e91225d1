import Foundation
import GRDB

extension SampleStore {
    /// Records several ground-truth labels in one transaction: all of them or none.
    ///
    /// As ``recordLabel(id:label:at:)``: a later label for the same id replaces the earlier one, and the
    /// escalation need not be stored yet.
    public func recordLabels(_ labels: [(id: UUID, label: Int)], at time: Double = Date().timeIntervalSince1970)
        throws
    {
        try pool.write { db in
            for (id, label) in labels {
                try db.execute(
                    sql: """
                        INSERT INTO label (escalation_id, label, recorded_at) VALUES (?, ?, ?)
                        ON CONFLICT(escalation_id) DO UPDATE SET label = excluded.label, recorded_at = excluded.recorded_at
                        """,
                    arguments: [id.uuidString, label, time])
            }
        }
    }

    /// Ground-truth labels stored.
    public func labelCount() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM label") ?? 0 }
    }
}
