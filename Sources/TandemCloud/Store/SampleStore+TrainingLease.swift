import Foundation
import GRDB

extension SampleStore {
    /// Who holds the training lease and until when.
    public struct TrainingLease: Sendable, Equatable {
        /// The holder's name (worker id).
        public var holder: String
        /// Seconds since 1970 when the lease lapses unless renewed.
        public var expiresAt: Double
    }

    /// Takes the training lease for `holder` unless another holder's lease is still running.
    ///
    /// Only one trainer runs across all workers sharing this store: each calls this before a round and
    /// trains only when it returns true, renewing (calling again) well before `durationSeconds` pass. The
    /// check and the write are one `BEGIN IMMEDIATE` transaction, so two processes racing for the lease
    /// cannot both win. A holder that dies loses the lease when it expires.
    ///
    /// - Returns: whether `holder` holds the lease now (a holder calling again extends its own lease).
    public func acquireTrainingLease(holder: String, durationSeconds: Double, now: Double) throws -> Bool {
        var acquired = false
        try pool.writeWithoutTransaction { db in
            try db.inTransaction(.immediate) {
                let row = try Row.fetchOne(
                    db, sql: "SELECT holder, expires_at FROM training_lease WHERE name = 'trainer'")
                if let row, (row["holder"] as String) != holder, (row["expires_at"] as Double) > now {
                    acquired = false
                    return .commit
                }
                try db.execute(
                    sql: """
                        INSERT INTO training_lease (name, holder, expires_at) VALUES ('trainer', ?, ?)
                        ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                        """,
                    arguments: [holder, now + durationSeconds])
                acquired = true
                return .commit
            }
        }
        return acquired
    }

    /// Gives the lease up if `holder` has it, so another worker need not wait for it to expire.
    public func releaseTrainingLease(holder: String) throws {
        try pool.write { db in
            try db.execute(
                sql: "DELETE FROM training_lease WHERE name = 'trainer' AND holder = ?", arguments: [holder])
        }
    }

    /// The lease as stored (it may have expired).
    public func trainingLease() throws -> TrainingLease? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT holder, expires_at FROM training_lease WHERE name = 'trainer'").map {
                TrainingLease(holder: $0["holder"], expiresAt: $0["expires_at"])
            }
        }
    }

    /// A finished retraining round as recorded.
    public struct RecordedRound: Sendable, Equatable {
        /// Seconds since 1970 when it started.
        public var startedAt: Double
        /// Seconds since 1970 when it finished.
        public var finishedAt: Double
        /// Whether its candidate passed the gate.
        public var passed: Bool
        /// One line: the gate's verdict and reason.
        public var summary: String
        /// The candidate edge model's version, if the round got that far.
        public var version: String?
        /// How the round ended (`gate-failed`, `promoted`, `rolled-back`, `rollout-failed`, …), if recorded.
        public var outcome: String?
        /// The gate report as JSON, if the round got that far.
        public var report: String?

        /// Creates a record.
        public init(
            startedAt: Double, finishedAt: Double, passed: Bool, summary: String, version: String? = nil,
            outcome: String? = nil, report: String? = nil
        ) {
            self.startedAt = startedAt
            self.finishedAt = finishedAt
            self.passed = passed
            self.summary = summary
            self.version = version
            self.outcome = outcome
            self.report = report
        }
    }

    /// Records a finished round; its start is where "new hard examples since the last round" count from.
    public func recordRound(_ round: RecordedRound) throws {
        try pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO retraining_round (started_at, finished_at, passed, summary, version, outcome, report)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    round.startedAt, round.finishedAt, round.passed, round.summary, round.version, round.outcome,
                    round.report,
                ])
        }
    }

    /// Recorded rounds, the most recently started first.
    public func rounds(limit: Int? = nil) throws -> [RecordedRound] {
        try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT started_at, finished_at, passed, summary, version, outcome, report FROM retraining_round
                    ORDER BY started_at DESC, id DESC LIMIT ?
                    """,
                arguments: [limit ?? -1]
            ).map {
                RecordedRound(
                    startedAt: $0["started_at"], finishedAt: $0["finished_at"], passed: $0["passed"],
                    summary: $0["summary"], version: $0["version"], outcome: $0["outcome"], report: $0["report"])
            }
        }
    }

    /// How many recorded rounds ended each way, by outcome (`unrecorded` for rounds stored without one).
    public func roundOutcomeCounts() throws -> [String: Int] {
        try pool.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: "SELECT COALESCE(outcome, 'unrecorded') AS outcome, COUNT(*) AS n FROM retraining_round GROUP BY 1"
            )
            return Dictionary(rows.map { ($0["outcome"], $0["n"]) }, uniquingKeysWith: +)
        }
    }
}
