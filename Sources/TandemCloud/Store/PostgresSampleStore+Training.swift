import Foundation
import NIOCore
import PostgresNIO
import TandemFleet

extension PostgresSampleStore: TrainingStore {
    public func hardExampleCount(receivedAfter time: Double) throws -> Int {
        try withConnection { c in
            try run(
                c,
                """
                SELECT COUNT(*) FROM escalation WHERE received_at > \(time)
                AND substring(payload from 1 for 4) <> \(unescaped: AuditEstimate.postgresStoredPrefix)
                """
            ).rows.first.map { try $0.decode(Int.self) } ?? 0
        }
    }

    public func labelCount(recordedAfter time: Double) throws -> Int {
        try withConnection { c in
            try run(
                c,
                """
                SELECT COUNT(*) FROM label l JOIN escalation e ON e.id = l.escalation_id
                WHERE \(unescaped: labelMatchesEscalation) AND GREATEST(l.recorded_at, e.received_at) > \(time)
                """
            ).rows.first.map { try $0.decode(Int.self) } ?? 0
        }
    }

    public func trainingExamples(receivedAfter: Double? = nil, limit: Int? = nil) throws -> (
        examples: [SampleStore.TrainingExample], undecodable: Int
    ) {
        let after = receivedAfter ?? -Double.greatestFiniteMagnitude
        // LIMIT NULL is no limit.
        let rows = try withConnection { c in
            try run(
                c,
                """
                SELECT e.id, e.device, e.edge_model, e.received_at, e.payload, e.verdict_label, l.label
                FROM escalation e LEFT JOIN label l ON l.escalation_id = e.id AND \(unescaped: labelMatchesEscalation)
                WHERE (l.label IS NOT NULL OR e.verdict_label IS NOT NULL) AND e.received_at > \(after)
                ORDER BY e.received_at, e.id LIMIT \(limit)
                """
            ).rows.map { try $0.decode((UUID, String, String, Double, ByteBuffer, Int?, Int?).self) }
        }
        var examples = [SampleStore.TrainingExample]()
        var undecodable = 0
        for (id, device, model, received, payload, verdict, truth) in rows {
            guard
                let example = SampleStore.TrainingExample(
                    id: id, device: device, edgeModel: model, receivedAt: received, payload: Array(buffer: payload),
                    groundTruth: truth, verdict: verdict)
            else {
                undecodable += 1
                continue
            }
            examples.append(example)
        }
        return (examples, undecodable)
    }

    /// Takes or renews the lease in one statement: the row is inserted, or updated only where its holder is
    /// `holder` or its expiry has passed; PostgreSQL's row lock makes concurrent callers see each other's
    /// committed row, so two workers racing for an expired lease cannot both win.
    public func acquireTrainingLease(holder: String, durationSeconds: Double, now: Double) throws -> Bool {
        let expires = now + durationSeconds
        return try withConnection { c in
            try run(
                c,
                """
                INSERT INTO training_lease (name, holder, expires_at) VALUES ('trainer', \(holder), \(expires))
                ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
                WHERE training_lease.holder = EXCLUDED.holder OR training_lease.expires_at <= \(now)
                RETURNING holder
                """
            ).rows.count == 1
        }
    }

    public func releaseTrainingLease(holder: String) throws {
        try withConnection { c in
            _ = try run(c, "DELETE FROM training_lease WHERE name = 'trainer' AND holder = \(holder)")
        }
    }

    public func trainingLease() throws -> SampleStore.TrainingLease? {
        try withConnection { c in
            try run(c, "SELECT holder, expires_at FROM training_lease WHERE name = 'trainer'").rows.first.map {
                let (holder, expires) = try $0.decode((String, Double).self)
                return SampleStore.TrainingLease(holder: holder, expiresAt: expires)
            }
        }
    }

    public func recordRound(_ round: SampleStore.RecordedRound) throws {
        try withConnection { c in
            _ = try run(
                c,
                """
                INSERT INTO retraining_round (started_at, finished_at, passed, summary, version, outcome, report)
                VALUES (\(round.startedAt), \(round.finishedAt), \(round.passed), \(round.summary), \(round.version),
                \(round.outcome), \(round.report))
                """)
        }
    }

    public func roundOutcomeCounts() throws -> [String: Int] {
        try withConnection { c in
            var counts: [String: Int] = [:]
            for row in try run(
                c, "SELECT COALESCE(outcome, 'unrecorded'), COUNT(*) FROM retraining_round GROUP BY 1"
            ).rows {
                let (outcome, count) = try row.decode((String, Int).self)
                counts[outcome, default: 0] += count
            }
            return counts
        }
    }

    public func rounds(limit: Int? = nil) throws -> [SampleStore.RecordedRound] {
        try withConnection { c in
            try run(
                c,
                """
                SELECT started_at, finished_at, passed, summary, version, outcome, report FROM retraining_round
                ORDER BY started_at DESC, id DESC LIMIT \(limit)
                """
            ).rows.map { row in
                let (started, finished, passed, summary, version, outcome, report) = try row.decode(
                    (Double, Double, Bool, String, String?, String?, String?).self)
                return SampleStore.RecordedRound(
                    startedAt: started, finishedAt: finished, passed: passed, summary: summary, version: version,
                    outcome: outcome, report: report)
            }
        }
    }

    public func edgeAccuracy(of models: [String], receivedSince time: Double) throws -> [String: AccuracyComparison
        .Tally]
    {
        guard !models.isEmpty else { return [:] }
        return try withConnection { c in
            let rows = try run(
                c,
                """
                SELECT e.edge_model, COUNT(*) FILTER (WHERE e.edge_label = l.label), COUNT(*)
                FROM escalation e JOIN label l ON l.escalation_id = e.id AND \(unescaped: labelMatchesEscalation)
                WHERE e.received_at >= \(time) AND e.edge_model = ANY(\(models))
                GROUP BY e.edge_model
                """
            ).rows
            var tallies = [String: AccuracyComparison.Tally]()
            for row in rows {
                let (model, correct, labelled) = try row.decode((String, Int, Int).self)
                tallies[model] = AccuracyComparison.Tally(correct: correct, labelled: labelled)
            }
            return tallies
        }
    }

    public func edgeAccuracy(
        of model: String, fleet: String, devices: [String]?, receivedSince time: Double, auditsOnly: Bool = false
    ) throws -> AccuracyComparison.Tally {
        try withConnection { c in
            let rows = try run(
                c,
                """
                SELECT COUNT(*) FILTER (WHERE e.edge_label = l.label), COUNT(*)
                FROM escalation e JOIN label l ON l.escalation_id = e.id AND \(unescaped: labelMatchesEscalation)
                WHERE e.received_at >= \(time) AND e.edge_model = \(model) AND e.fleet = \(fleet)
                AND (\(devices == nil) OR e.device = ANY(\(devices ?? [])))
                AND (NOT \(auditsOnly)
                    OR substring(e.payload from 1 for 4) = \(unescaped: AuditEstimate.postgresStoredPrefix))
                GROUP BY e.device ORDER BY e.device
                """
            ).rows
            return .pooled(
                try rows.map { row in
                    let (correct, labelled) = try row.decode((Int, Int).self)
                    return AccuracyComparison.Tally(correct: correct, labelled: labelled)
                })
        }
    }
}
