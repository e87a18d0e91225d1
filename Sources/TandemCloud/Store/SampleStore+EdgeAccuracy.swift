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
                    FROM escalation e JOIN label l ON l.escalation_id = e.id AND \(labelMatchesEscalation)
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

    /// How often `model` predicted the ground truth on labelled escalations from `devices` of `fleet` (all of the
    /// fleet's if nil) received at or after `time`, audits alone with `auditsOnly`, pooled over the devices
    /// (``TrainingStore/edgeAccuracy(of:fleet:devices:receivedSince:auditsOnly:)``).
    public func edgeAccuracy(
        of model: String, fleet: String, devices: [String]?, receivedSince time: Double, auditsOnly: Bool = false
    ) throws -> AccuracyComparison.Tally {
        // The device list goes in as one JSON array, however long the cohort.
        let list = String(decoding: (try? JSONEncoder().encode(devices ?? [])) ?? Data("[]".utf8), as: UTF8.self)
        let rows = try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT COUNT(*) AS labelled, COALESCE(SUM(e.edge_label = l.label), 0) AS correct
                    FROM escalation e JOIN label l ON l.escalation_id = e.id AND \(labelMatchesEscalation)
                    WHERE e.received_at >= ? AND e.edge_model = ? AND e.fleet = ?
                    AND (? OR e.device IN (SELECT value FROM json_each(?)))
                    AND (NOT ? OR substr(e.payload, 1, 4) = \(AuditEstimate.sqliteStoredPrefix))
                    GROUP BY e.device ORDER BY e.device
                    """,
                arguments: [time, model, fleet, devices == nil, list, auditsOnly])
        }
        return .pooled(rows.map { AccuracyComparison.Tally(correct: $0["correct"], labelled: $0["labelled"]) })
    }
}
