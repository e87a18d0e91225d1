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

    /// The estimate of a fleet from its devices' estimates, each device counted for at most twice the median
    /// device's audits (its counts scaled down in proportion): a device that sends audits at the top of its rate
    /// limit — a hostile one, claiming answers the cloud disagrees with — moves the estimate by at most its capped
    /// share (with 20 devices about 1/10), not by its volume. Devices of similar rates are not changed.
    public static func pooled(_ devices: some Collection<AuditEstimate>) -> AuditEstimate {
        let counts = devices.map(\.audits).sorted()
        guard !counts.isEmpty else { return AuditEstimate(audits: 0, answered: 0, agreed: 0, labelled: 0, correct: 0) }
        let cap = max(1, counts[(counts.count - 1) / 2].multipliedReportingOverflow(by: 2).partialValue)
        var total = AuditEstimate(audits: 0, answered: 0, agreed: 0, labelled: 0, correct: 0)
        for device in devices {
            let share = device.audits > cap ? Double(cap) / Double(device.audits) : 1
            func scaled(_ count: Int) -> Int { share == 1 ? count : Int((Double(count) * share).rounded()) }
            total.audits += scaled(device.audits)
            total.answered += scaled(device.answered)
            total.agreed += scaled(device.agreed)
            total.labelled += scaled(device.labelled)
            total.correct += scaled(device.correct)
        }
        return total
    }

    /// The first four bytes an audit escalation is stored with, as a hex literal's digits: magic `TE`, version 3,
    /// reason 2 (audit). The stores select audits by them, so no column (and no migration) is needed.
    static let storedPrefixHex = "54450302"
}

extension SampleStore {
    /// Audit escalations received at or after `start` and before `end` (seconds since 1970), by edge model version
    /// and device.
    public func auditEstimatesByDevice(receivedFrom start: Double, before end: Double) throws -> [String: [String:
        AuditEstimate]]
    {
        let rows = try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT e.edge_model, e.device, COUNT(*) AS audits, COUNT(e.verdict_label) AS answered,
                        COALESCE(SUM(e.verdict_label IS NOT NULL AND e.edge_label = e.verdict_label), 0) AS agreed,
                        COUNT(l.label) AS labelled,
                        COALESCE(SUM(l.label IS NOT NULL AND e.edge_label = l.label), 0) AS correct
                    FROM escalation e LEFT JOIN label l ON l.escalation_id = e.id AND \(labelMatchesEscalation)
                    WHERE e.received_at >= ? AND e.received_at < ?
                    AND substr(e.payload, 1, 4) = x'\(AuditEstimate.storedPrefixHex)'
                    GROUP BY e.edge_model, e.device
                    """,
                arguments: [start, end])
        }
        var estimates = [String: [String: AuditEstimate]]()
        for row in rows {
            estimates[row["edge_model"], default: [:]][row["device"]] = AuditEstimate(
                audits: row["audits"], answered: row["answered"], agreed: row["agreed"], labelled: row["labelled"],
                correct: row["correct"])
        }
        return estimates
    }
}

extension PostgresSampleStore {
    /// Audit escalations received at or after `start` and before `end` (seconds since 1970), by edge model version
    /// and device.
    public func auditEstimatesByDevice(receivedFrom start: Double, before end: Double) throws -> [String: [String:
        AuditEstimate]]
    {
        try withConnection { c in
            let rows = try run(
                c,
                """
                SELECT e.edge_model, e.device, COUNT(*), COUNT(e.verdict_label),
                    COUNT(*) FILTER (WHERE e.edge_label = e.verdict_label), COUNT(l.label),
                    COUNT(*) FILTER (WHERE e.edge_label = l.label)
                FROM escalation e LEFT JOIN label l ON l.escalation_id = e.id AND \(unescaped: labelMatchesEscalation)
                WHERE e.received_at >= \(start) AND e.received_at < \(end)
                AND substring(e.payload from 1 for 4) = decode(\(unescaped: "'\(AuditEstimate.storedPrefixHex)'"), 'hex')
                GROUP BY e.edge_model, e.device
                """
            ).rows
            var estimates = [String: [String: AuditEstimate]]()
            for row in rows {
                let (model, device, audits, answered, agreed, labelled, correct) = try row.decode(
                    (String, String, Int, Int, Int, Int, Int).self)
                estimates[model, default: [:]][device] = AuditEstimate(
                    audits: audits, answered: answered, agreed: agreed, labelled: labelled, correct: correct)
            }
            return estimates
        }
    }
}
