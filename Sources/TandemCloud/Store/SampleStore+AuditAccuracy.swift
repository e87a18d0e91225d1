import Foundation
import GRDB
import PostgresNIO

/// What the audit escalations of one edge model version say about its accuracy.
///
/// Audits are a random share of the windows the edge was confident about and found familiar (reason `audit`,
/// docs/PROTOCOL.md), so unlike the other escalations — the hard windows — they sample what the edge answers
/// on its own without bias. Two estimates come from them: the share whose edge prediction matches the ground
/// truth (``labelAccuracy``, from labelled audits only: unbiased, but only as many as operators label) and the
/// share matching the cloud's full model (``verdictAgreement``: every answered audit, a proxy that is as good
/// as the full model is).
public struct AuditEstimate: Codable, Sendable, Equatable {
    /// Audit escalations received.
    public var audits: Int
    /// Of them, answered by the cloud's model.
    public var answered: Int
    /// Of the answered, those whose edge prediction is the cloud's verdict.
    public var agreed: Int
    /// Audit escalations with a ground-truth label.
    public var labelled: Int
    /// Of the labelled, those whose edge prediction is the label.
    public var correct: Int

    /// Creates an estimate.
    public init(audits: Int, answered: Int, agreed: Int, labelled: Int, correct: Int) {
        self.audits = audits
        self.answered = answered
        self.agreed = agreed
        self.labelled = labelled
        self.correct = correct
    }

    /// The edge model's accuracy on labelled audits; nil without any.
    public var labelAccuracy: Double? { labelled > 0 ? Double(correct) / Double(labelled) : nil }
    /// How often the edge model agrees with the cloud's verdict on answered audits; nil without any.
    public var verdictAgreement: Double? { answered > 0 ? Double(agreed) / Double(answered) : nil }

    /// The first four bytes an audit escalation is stored with, as a hex literal's digits: magic `TE`, version 3,
    /// reason 2 (audit). The stores select audits by them, so no column (and no migration) is needed.
    static let storedPrefixHex = "54450302"
}

extension SampleStore {
    /// Audit escalations received at or after `start` and before `end` (seconds since 1970), by edge model version.
    public func auditEstimates(receivedFrom start: Double, before end: Double) throws -> [String: AuditEstimate] {
        let rows = try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT e.edge_model, COUNT(*) AS audits, COUNT(e.verdict_label) AS answered,
                        COALESCE(SUM(e.verdict_label IS NOT NULL AND e.edge_label = e.verdict_label), 0) AS agreed,
                        COUNT(l.label) AS labelled,
                        COALESCE(SUM(l.label IS NOT NULL AND e.edge_label = l.label), 0) AS correct
                    FROM escalation e LEFT JOIN label l ON l.escalation_id = e.id AND \(labelMatchesEscalation)
                    WHERE e.received_at >= ? AND e.received_at < ?
                    AND substr(e.payload, 1, 4) = x'\(AuditEstimate.storedPrefixHex)'
                    GROUP BY e.edge_model
                    """,
                arguments: [start, end])
        }
        var estimates = [String: AuditEstimate]()
        for row in rows {
            estimates[row["edge_model"]] = AuditEstimate(
                audits: row["audits"], answered: row["answered"], agreed: row["agreed"], labelled: row["labelled"],
                correct: row["correct"])
        }
        return estimates
    }
}

extension PostgresSampleStore {
    /// Audit escalations received at or after `start` and before `end` (seconds since 1970), by edge model version.
    public func auditEstimates(receivedFrom start: Double, before end: Double) throws -> [String: AuditEstimate] {
        try withConnection { c in
            let rows = try run(
                c,
                """
                SELECT e.edge_model, COUNT(*), COUNT(e.verdict_label),
                    COUNT(*) FILTER (WHERE e.edge_label = e.verdict_label), COUNT(l.label),
                    COUNT(*) FILTER (WHERE e.edge_label = l.label)
                FROM escalation e LEFT JOIN label l ON l.escalation_id = e.id AND \(unescaped: labelMatchesEscalation)
                WHERE e.received_at >= \(start) AND e.received_at < \(end)
                AND substring(e.payload from 1 for 4) = decode(\(unescaped: "'\(AuditEstimate.storedPrefixHex)'"), 'hex')
                GROUP BY e.edge_model
                """
            ).rows
            var estimates = [String: AuditEstimate]()
            for row in rows {
                let (model, audits, answered, agreed, labelled, correct) = try row.decode(
                    (String, Int, Int, Int, Int, Int).self)
                estimates[model] = AuditEstimate(
                    audits: audits, answered: answered, agreed: agreed, labelled: labelled, correct: correct)
            }
            return estimates
        }
    }
}
