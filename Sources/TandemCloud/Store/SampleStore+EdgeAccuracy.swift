import Foundation
import GRDB
import TandemFleet

extension SampleStore {
    /// How often each edge model's prediction matched the ground truth, on the labelled escalations it sent.
    ///
    /// - Parameters:
    ///   - models: The edge model versions to count.
    ///   - time: Only escalations received at or after this time (seconds since 1970).
    /// - Returns: A tally per version that has labelled escalations.
    public func edgeAccuracy(of models: [String], receivedSince time: Double) throws -> [String: AccuracyComparison
        .Tally]
    {
        guard !models.isEmpty else { return [:] }
        let placeholders = Array(repeating: "?", count: models.count).joined(separator: ", ")
        let rows = try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT e.edge_model, COUNT(*) AS labelled, SUM(e.edge_label = l.label) AS correct
                    FROM escalation e JOIN label l ON l.escalation_id = e.id
                    WHERE e.received_at >= ? AND e.edge_model IN (\(placeholders))
                    GROUP BY e.edge_model
                    """,
                arguments: StatementArguments([time] as [any DatabaseValueConvertible] + models))
        }
        var tallies = [String: AccuracyComparison.Tally]()
        for row in rows {
            tallies[row["edge_model"]] = AccuracyComparison.Tally(correct: row["correct"], labelled: row["labelled"])
        }
        return tallies
    }
}
