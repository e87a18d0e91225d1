import Foundation
import GRDB
import TandemProtocol

/// The cloud's record of escalations: each window the edge was unsure about, the edge's guess, the full
/// model's verdict and, when it arrives, the ground truth. SQLite in the data directory (WAL, so several
/// worker processes on one host share it); one row per escalation id, whoever receives it.
public final class SampleStore: Sendable {
    /// The database file.
    public let path: String
    let pool: DatabasePool

    /// One stored escalation.
    public struct Escalation: Sendable, Equatable {
        /// The escalation id.
        public var id: UUID
        /// Device and stream it came from.
        public var device: String
        /// The stream.
        public var stream: String
        /// The MQTT payload as received (binary escalation, docs/PROTOCOL.md).
        public var payload: [UInt8]
        /// Where the verdict goes.
        public var responseTopic: String
        /// The edge's top class and confidence.
        public var edgeLabel: Int
        /// The edge's confidence.
        public var edgeConfidence: Double
        /// The edge model's version.
        public var edgeModel: String
        /// Seconds since 1970 when it was received.
        public var receivedAt: Double
        /// The fleet of the topic it came on; nil for rows stored before fleets were kept (or by tests). A device's
        /// label counts for an escalation only when both name the same fleet and device.
        public var fleet: String?
        /// When the window started, seconds since 1970 on the device's clock (the escalation's `windowStart`); nil
        /// when unknown. Time-range labels select escalations by it.
        public var windowStart: Double?

        /// Creates a record.
        public init(
            id: UUID, device: String, stream: String, payload: [UInt8], responseTopic: String, edgeLabel: Int,
            edgeConfidence: Double, edgeModel: String, receivedAt: Double, fleet: String? = nil,
            windowStart: Double? = nil
        ) {
            self.windowStart = windowStart.flatMap { $0.isFinite ? $0 : nil }
            self.id = id
            self.device = device
            self.stream = stream
            self.payload = payload
            self.responseTopic = responseTopic
            self.edgeLabel = edgeLabel
            self.edgeConfidence = edgeConfidence
            self.edgeModel = edgeModel
            self.receivedAt = receivedAt
            self.fleet = fleet
        }
    }

    /// Opens (and migrates) the store at `path`.
    ///
    /// - Throws: GRDB's `DatabaseError` when the file cannot be opened or migrated.
    public init(path: String) throws {
        self.path = path
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        // WAL with synchronous=NORMAL: a committed row survives the process being killed (it is in the
        // operating system's cache); only a power loss can take the last transactions.
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        pool = try Self.openExclusively(path: path, configuration: configuration, lockPath: path + ".migration-lock")
    }

    /// Opens and migrates holding an exclusive lock on `lockPath`, so that workers starting together on one
    /// store neither race to switch a new file to WAL (SQLite answers `PRAGMA journal_mode = WAL` with "database
    /// is locked" without waiting for the busy timeout) nor both find a migration pending and both run it (GRDB
    /// checks what is applied before its transaction starts, so the second worker would create a table the
    /// first just made).
    ///
    /// - Throws: GRDB's `DatabaseError`, or a `CocoaError` when the lock file cannot be opened.
    static func openExclusively(path: String, configuration: Configuration, lockPath: String) throws -> DatabasePool {
        let descriptor = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: lockPath])
        }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 && errno == EINTR {}
        defer { flock(descriptor, LOCK_UN) }
        // The store holds what devices sent and operators' labels: a new file is the owner's only (0600), and
        // SQLite gives its -wal and -shm files the database file's mode. An existing file keeps its mode.
        let file = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard file >= 0 else { throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path]) }
        close(file)
        let pool = try DatabasePool(path: path, configuration: configuration)
        try migrator.migrate(pool)
        return pool
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("1: escalations") { db in
            try db.execute(
                sql: """
                    CREATE TABLE escalation (
                        id TEXT PRIMARY KEY NOT NULL,
                        device TEXT NOT NULL,
                        stream TEXT NOT NULL,
                        payload BLOB NOT NULL,
                        response_topic TEXT NOT NULL,
                        edge_label INTEGER NOT NULL,
                        edge_confidence REAL NOT NULL,
                        edge_model TEXT NOT NULL,
                        received_at REAL NOT NULL,
                        claimed_by TEXT,
                        claimed_at REAL,
                        verdict_label INTEGER,
                        verdict_probabilities TEXT,
                        cloud_model TEXT,
                        answered_at REAL,
                        ground_truth INTEGER
                    );
                    CREATE INDEX escalation_unanswered ON escalation(answered_at, received_at);
                    CREATE INDEX escalation_device ON escalation(device, received_at);
                    """)
        }
        migrator.registerMigration("2: labels, training lease and rounds") { db in
            // Labels get their own table, keyed by escalation id: an operator's label may arrive before the
            // escalation it names (different topics, different workers), and a later label corrects an earlier
            // one. The escalation table's ground_truth column is left unused.
            try db.execute(
                sql: """
                    CREATE TABLE label (
                        escalation_id TEXT PRIMARY KEY NOT NULL,
                        label INTEGER NOT NULL,
                        recorded_at REAL NOT NULL
                    );
                    CREATE INDEX label_recorded ON label(recorded_at);
                    CREATE TABLE training_lease (
                        name TEXT PRIMARY KEY NOT NULL,
                        holder TEXT NOT NULL,
                        expires_at REAL NOT NULL
                    );
                    CREATE TABLE retraining_round (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        started_at REAL NOT NULL,
                        finished_at REAL NOT NULL,
                        passed INTEGER NOT NULL,
                        summary TEXT NOT NULL
                    );
                    CREATE INDEX escalation_received ON escalation(received_at);
                    """)
        }
        migrator.registerMigration("3: round details") { db in
            // What the retraining service records besides the gate's verdict: the candidate's version, how the
            // round ended (gate-failed, promoted, rolled-back, …) and the gate report as JSON.
            try db.execute(
                sql: """
                    ALTER TABLE retraining_round ADD COLUMN version TEXT;
                    ALTER TABLE retraining_round ADD COLUMN outcome TEXT;
                    ALTER TABLE retraining_round ADD COLUMN report TEXT;
                    """)
        }
        migrator.registerMigration("4: fleets, label origins and terminal rows") { db in
            // The fleet of an escalation's topic, so that a device's label counts only for that device's own
            // escalations; where a label came from (fleet and device of its topic; NULL for an operator's); how
            // often a row was claimed again, and why it will never be answered (terminal rows are not reclaimed).
            // Rows stored earlier get their fleet from their verdict topic where it is the device's own.
            try db.execute(
                sql: """
                    ALTER TABLE escalation ADD COLUMN fleet TEXT;
                    ALTER TABLE escalation ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE escalation ADD COLUMN terminal_reason TEXT;
                    ALTER TABLE escalation ADD COLUMN terminal_at REAL;
                    ALTER TABLE label ADD COLUMN fleet TEXT;
                    ALTER TABLE label ADD COLUMN device TEXT;
                    UPDATE escalation SET fleet = substr(response_topic, 11, instr(substr(response_topic, 11), '/') - 1)
                    WHERE response_topic = 'tandem/v1/'
                        || substr(response_topic, 11, instr(substr(response_topic, 11), '/') - 1)
                        || '/' || device || '/verdicts';
                    """)
        }
        migrator.registerMigration("5: window times") { db in
            // The window's start on the device's clock, for time-range labels (an operator's "bearing fault from
            // 10:40 to 11:15"); rows stored earlier keep NULL and are matched by their arrival time.
            try db.execute(
                sql: """
                    ALTER TABLE escalation ADD COLUMN window_start REAL;
                    CREATE INDEX escalation_stream_window ON escalation(device, stream, window_start);
                    """)
        }
        migrator.registerMigration("6: audit index") { db in
            // Audits are told by their payload's first four bytes (AuditEstimate.storedPrefixHex); the estimates
            // in every /metrics scrape find them through this index instead of reading every stored payload.
            try db.execute(sql: "CREATE INDEX escalation_audit ON escalation(substr(payload, 1, 4), received_at);")
        }
        return migrator
    }

    /// Stores an escalation unless one with its id is stored already.
    ///
    /// - Returns: whether this call stored it (false: a duplicate delivery).
    @discardableResult
    public func insert(_ e: Escalation) throws -> Bool {
        try insert([e])[0]
    }

    /// Stores many escalations in one transaction; returns which were new.
    public func insert(_ escalations: [Escalation]) throws -> [Bool] {
        try pool.write { db in try Self.insert(escalations, in: db) }
    }

    /// Stores `escalations`, then records `verdicts`, in one transaction; returns which escalations were new.
    public func insert(
        _ escalations: [Escalation], answering verdicts: [(id: UUID, verdict: StoredVerdict)], at time: Double
    ) throws -> [Bool] {
        try pool.write { db in
            let fresh = try Self.insert(escalations, in: db)
            try Self.answer(verdicts, at: time, in: db)
            return fresh
        }
    }

    static func insert(_ escalations: [Escalation], in db: Database) throws -> [Bool] {
        // Parsed once per connection, not once per row.
        let statement = try db.cachedStatement(
            sql: """
                INSERT OR IGNORE INTO escalation
                (id, device, stream, payload, response_topic, edge_label, edge_confidence, edge_model, received_at,
                fleet, window_start) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
        return try escalations.map { e in
            try statement.execute(
                arguments: [
                    e.id.text, e.device, e.stream, Data(e.payload), e.responseTopic, e.edgeLabel,
                    e.edgeConfidence, e.edgeModel, e.receivedAt, e.fleet, e.windowStart,
                ])
            return db.changesCount == 1
        }
    }

    /// A verdict as stored.
    public struct StoredVerdict: Sendable, Equatable {
        /// The class.
        public var label: Int
        /// The class probabilities.
        public var probabilities: [Float]
        /// The model that answered.
        public var model: String

        /// Creates a verdict record.
        public init(label: Int, probabilities: [Float], model: String) {
            self.label = label
            self.probabilities = probabilities
            self.model = model
        }
    }

    /// Records verdicts (the first one for an id wins; later ones for the same id are ignored).
    public func answer(_ verdicts: [(id: UUID, verdict: StoredVerdict)], at time: Double) throws {
        try pool.write { db in try Self.answer(verdicts, at: time, in: db) }
    }

    static func answer(_ verdicts: [(id: UUID, verdict: StoredVerdict)], at time: Double, in db: Database) throws {
        guard !verdicts.isEmpty else { return }
        let statement = try db.cachedStatement(
            sql: """
                UPDATE escalation SET verdict_label = ?, verdict_probabilities = ?, cloud_model = ?,
                answered_at = ? WHERE id = ? AND answered_at IS NULL
                """)
        for (id, v) in verdicts {
            let probabilities = "[" + v.probabilities.map { String($0) }.joined(separator: ",") + "]"
            try statement.execute(arguments: [v.label, probabilities, v.model, time, id.text])
        }
    }

    /// The stored verdict of `id`, if it was answered.
    public func verdict(for id: UUID) throws -> StoredVerdict? {
        try pool.read { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: "SELECT verdict_label, verdict_probabilities, cloud_model FROM escalation WHERE id = ?",
                    arguments: [id.uuidString]),
                let label: Int = row["verdict_label"], let text: String = row["verdict_probabilities"],
                let model: String = row["cloud_model"]
            else { return nil }
            return StoredVerdict(label: label, probabilities: Self.probabilities(fromText: text), model: model)
        }
    }

    /// Claims up to `limit` escalations nobody answered that were received (or last claimed) more than
    /// `staleSeconds` ago — a worker died holding them, or answering failed — for `worker`; a row already claimed
    /// `maximumClaims` times is given up instead (terminal, `gaveUp`) and never claimed again.
    public func claimStale(
        worker: String, staleSeconds: Double, now: Double, limit: Int, maximumClaims: Int
    ) throws -> Claim {
        try pool.write { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM escalation WHERE answered_at IS NULL AND terminal_reason IS NULL AND received_at < ?
                    AND (claimed_at IS NULL OR claimed_at < ?) ORDER BY received_at LIMIT ?
                    """,
                arguments: [now - staleSeconds, now - staleSeconds, limit])
            var claim = Claim()
            for row in rows {
                let id: String = row["id"]
                let attempts: Int = row["attempts"]
                let payload: Data = row["payload"]
                let escalation = Escalation(
                    id: UUID(uuidString: id) ?? UUID(), device: row["device"], stream: row["stream"],
                    payload: Array(payload), responseTopic: row["response_topic"], edgeLabel: row["edge_label"],
                    edgeConfidence: row["edge_confidence"], edgeModel: row["edge_model"],
                    receivedAt: row["received_at"], fleet: row["fleet"])
                if attempts >= maximumClaims {
                    try db.execute(
                        sql: "UPDATE escalation SET terminal_reason = ?, terminal_at = ? WHERE id = ?",
                        arguments: [TerminalReason.gaveUp.rawValue, now, id])
                    claim.givenUp.append(escalation)
                } else {
                    try db.execute(
                        sql:
                            "UPDATE escalation SET claimed_by = ?, claimed_at = ?, attempts = attempts + 1 WHERE id = ?",
                        arguments: [worker, now, id])
                    claim.escalations.append(escalation)
                }
            }
            return claim
        }
    }

    /// Marks unanswered escalations as never to be answered (terminal) for `reason`.
    ///
    /// - Returns: The ids this call marked (those already answered or terminal are left as they are), so that a
    ///   row is reported once, by the worker that marked it.
    public func markTerminal(_ ids: [UUID], reason: TerminalReason, at time: Double) throws -> [UUID] {
        try pool.write { db in
            try ids.filter { id in
                try db.execute(
                    sql: """
                        UPDATE escalation SET terminal_reason = ?, terminal_at = ?
                        WHERE id = ? AND answered_at IS NULL AND terminal_reason IS NULL
                        """,
                    arguments: [reason.rawValue, time, id.uuidString])
                return db.changesCount == 1
            }
        }
    }

    /// Escalations that will never be answered, by reason.
    public func terminalCounts() throws -> [TerminalReason: Int] {
        try pool.read { db in
            var counts = [TerminalReason: Int]()
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT terminal_reason, COUNT(*) AS n FROM escalation WHERE terminal_reason IS NOT NULL
                    GROUP BY terminal_reason
                    """)
            {
                if let reason = TerminalReason(rawValue: row["terminal_reason"]) { counts[reason] = row["n"] }
            }
            return counts
        }
    }

    /// Counts: rows, answered rows, and the number of distinct ids (equal to rows by construction).
    public func counts() throws -> (rows: Int, answered: Int) {
        try pool.read { db in
            let rows = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM escalation") ?? 0
            let answered =
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM escalation WHERE answered_at IS NOT NULL") ?? 0
            return (rows, answered)
        }
    }

    /// Every stored escalation id.
    public func ids() throws -> [UUID] {
        try pool.read { db in
            try String.fetchAll(db, sql: "SELECT id FROM escalation").compactMap(UUID.init(uuidString:))
        }
    }
}
