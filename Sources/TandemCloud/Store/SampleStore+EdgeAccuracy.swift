import Foundation
import GRDB

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

    /// The label accuracy of a canary's candidate against the version it replaces, on the labelled escalations
    /// each sent since the canary started, or nil unless both rest on the policy's `minimumLabelledWindows`.
    ///
    /// Only escalated windows carry the edge's prediction and can get a label, so this is accuracy on the
    /// windows each model was unsure of, not the models' overall accuracy. A candidate that escalates fewer,
    /// harder windows may score lower here while being better overall; the policy's `maximumAccuracyDrop` is
    /// the slack for that.
    public func accuracyComparison(for rollout: Rollout) throws -> AccuracyComparison? {
        guard rollout.phase == .canary, let started = rollout.canaryStartedAt else { return nil }
        let tallies = try edgeAccuracy(
            of: [rollout.version, rollout.previousVersion], receivedSince: started.timeIntervalSince1970)
        let none = AccuracyComparison.Tally(correct: 0, labelled: 0)
        return AccuracyComparison(
            candidate: tallies[rollout.version] ?? none, baseline: tallies[rollout.previousVersion] ?? none,
            minimumWindows: rollout.policy.minimumLabelledWindows)
    }
}
