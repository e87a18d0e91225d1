import Foundation
import GRDB
import PostgresNIO
import TandemFleet

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

    /// The estimate of a fleet from its devices' estimates: the counts of audits, answered and labelled audits are
    /// the devices' sums; the agreement and the label accuracy are their devices' ratios pooled with each device
    /// weighing at most as much as the median device (a device with more audits than the lower median is scaled
    /// down to it). A device sending audits at the top of its rate limit — a hostile one, claiming answers the
    /// cloud disagrees with — thus moves the agreement by at most its share as a median device: in a fleet of 20
    /// devices with audits at most 1/11, below the audit drift rule's 0.15, however many it sends. Devices at or
    /// below the median count in full.
    public static func pooled(_ devices: some Collection<AuditEstimate>) -> AuditEstimate {
        let pooling = DevicePooling(counts: devices.map(\.audits))
        var total = AuditEstimate(audits: 0, answered: 0, agreed: 0, labelled: 0, correct: 0)
        var answered = 0.0, agreed = 0.0, labelled = 0.0, correct = 0.0
        for device in devices {
            total.audits = DevicePooling.sum(total.audits, device.audits)
            total.answered = DevicePooling.sum(total.answered, device.answered)
            total.labelled = DevicePooling.sum(total.labelled, device.labelled)
            let weight = pooling.weight(count: device.audits)
            answered += weight * Double(max(device.answered, 0))
            agreed += weight * Double(min(max(device.agreed, 0), max(device.answered, 0)))
            labelled += weight * Double(max(device.labelled, 0))
            correct += weight * Double(min(max(device.correct, 0), max(device.labelled, 0)))
        }
        total.agreed = DevicePooling.portion(agreed, of: answered, total.answered)
        total.correct = DevicePooling.portion(correct, of: labelled, total.labelled)
        return total
    }

    /// Estimates by edge model version, then by device.
    public typealias ByVersionAndDevice = [String: [String: AuditEstimate]]

    /// The first four bytes an audit escalation is stored with, as a hex literal's digits: magic `TE`, version 3,
    /// reason 2 (audit). The stores select audits by them, so no column (and no migration) is needed.
    static let storedPrefixHex = "54450302"
    /// ``storedPrefixHex`` as an SQLite blob literal.
    static let sqliteStoredPrefix = "x'\(storedPrefixHex)'"
    /// ``storedPrefixHex`` as a PostgreSQL bytea expression.
    static let postgresStoredPrefix = "decode('\(storedPrefixHex)', 'hex')"
}

extension SampleStore {
    /// Audit escalations received at or after `start` and before `end` (seconds since 1970), by edge model version
    /// and device.
    public func auditEstimatesByDevice(receivedFrom start: Double, before end: Double) throws
        -> AuditEstimate.ByVersionAndDevice
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
                    AND substr(e.payload, 1, 4) = \(AuditEstimate.sqliteStoredPrefix)
                    GROUP BY e.edge_model, e.device
                    """,
                arguments: [start, end])
        }
        var estimates = AuditEstimate.ByVersionAndDevice()
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
    public func auditEstimatesByDevice(receivedFrom start: Double, before end: Double) throws
        -> AuditEstimate.ByVersionAndDevice
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
                AND substring(e.payload from 1 for 4) = \(unescaped: AuditEstimate.postgresStoredPrefix)
                GROUP BY e.edge_model, e.device
                """
            ).rows
            var estimates = AuditEstimate.ByVersionAndDevice()
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
