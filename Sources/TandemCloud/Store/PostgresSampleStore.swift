import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import Synchronization
import TandemProtocol

/// The sample store on PostgreSQL, for escalation workers on several hosts: the same rows and rules as
/// ``SampleStore`` (one row per escalation id, the first verdict wins, stale claims taken over with
/// `FOR UPDATE SKIP LOCKED` so two workers never take the same row), and what the retraining loop needs
/// (``TrainingStore``: the lease as one row taken with a conditional `INSERT … ON CONFLICT DO UPDATE … WHERE`,
/// the record of rounds, training examples).
///
/// One connection per store, used by one call at a time; a call that finds it broken (the server
/// restarted) reconnects once and retries. Calls block the calling thread on the connection's event loop
/// (workers call from the MQTT network thread, which must not return before the row is stored).
///
/// URL: `postgres://user[:password]@host[:port]/database[?sslmode=disable|prefer|require]`
/// (default port 5432, sslmode prefer).
public final class PostgresSampleStore: Sendable {
    /// The URL without its password, for messages.
    public let description: String
    private let configuration: PostgresConnection.Configuration
    private let group: MultiThreadedEventLoopGroup
    private let logger: Logger
    // The connection is used by one call at a time: the Mutex serializes them.
    private let connection: Mutex<PostgresConnection?>
    private let nextID = Atomic<Int>(1)

    /// Connects to the database `url` names and creates or migrates its tables.
    public init(url: String) throws {
        guard let components = URLComponents(string: url), let host = components.host, !host.isEmpty,
            let user = components.user, !user.isEmpty
        else {
            throw StoreError(
                "store.url '\(Self.redacted(url))': expected postgres://user[:password]@host[:port]/database")
        }
        let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        let mode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
        let tls: PostgresConnection.Configuration.TLS
        switch mode {
        case "disable": tls = .disable
        case "prefer": tls = .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
        case "require": tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        default: throw StoreError("store.url: sslmode '\(mode)' is not disable, prefer or require")
        }
        configuration = PostgresConnection.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: components.password,
            database: database.isEmpty ? nil : database, tls: tls)
        description = Self.redacted(url)
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var logger = Logger(label: "tandem.store.postgres")
        logger.logLevel = .critical
        self.logger = logger
        connection = Mutex(nil)
        // On failure deinit closes what was opened.
        try migrate()
    }

    deinit {
        connection.withLock { $0.map { try? $0.close().wait() } }
        try? group.syncShutdownGracefully()
    }

    /// `url` with its password (if any) replaced, for logs and messages.
    public static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "…"
        return components.string ?? url
    }

    /// Runs `body` with the connection (connecting first if there is none), reconnecting once when the
    /// connection turns out closed.
    func withConnection<R>(_ body: (PostgresConnection) throws -> R) throws -> R {
        try connection.withLock { current in
            for attempt in 0..<2 {
                if current == nil || current?.isClosed == true {
                    do {
                        current = try PostgresConnection.connect(
                            on: group.next(), configuration: configuration,
                            id: nextID.add(1, ordering: .relaxed).oldValue, logger: logger
                        ).wait()
                    } catch {
                        throw StoreError("\(description): cannot connect: \(String(reflecting: error))")
                    }
                }
                guard let open = current else { continue }
                do {
                    return try body(open)
                } catch {
                    if open.isClosed && attempt == 0 {
                        current = nil
                        continue
                    }
                    throw error
                }
            }
            throw StoreError("\(description): the connection closed twice in a row")
        }
    }

    func run(_ connection: PostgresConnection, _ query: PostgresQuery) throws -> PostgresQueryResult {
        do {
            return try connection.query(query, logger: logger).wait()
        } catch let error as PSQLError {
            throw StoreError("\(description): \(error.serverInfo?[.message] ?? String(reflecting: error))")
        }
    }

    /// Runs `body` inside BEGIN … COMMIT (ROLLBACK if it throws).
    func transaction<R>(_ body: (PostgresConnection) throws -> R) throws -> R {
        try withConnection { c in
            _ = try run(c, "BEGIN")
            do {
                let result = try body(c)
                _ = try run(c, "COMMIT")
                return result
            } catch {
                _ = try? run(c, "ROLLBACK")
                throw error
            }
        }
    }

    /// The schema this code writes; `tandem_schema` records the one a database has. Raise it with every change to
    /// `migrate`.
    static let schemaVersion = 1

    /// Creates or updates the tables, once per schema version: a store opened on a database that is up to date
    /// issues no DDL on the data tables (only `CREATE TABLE IF NOT EXISTS tandem_schema`, which locks nothing they
    /// use). (`CREATE INDEX IF NOT EXISTS` and `ALTER TABLE … IF NOT EXISTS` take their table locks before
    /// they look, so a worker starting beside others that are writing would wait for their transactions, and they
    /// for it.)
    private func migrate() throws {
        try transaction { c in
            // Workers starting together: one migrates, the others wait for its lock.
            _ = try run(c, "SELECT pg_advisory_xact_lock(724265001)")
            _ = try run(c, "CREATE TABLE IF NOT EXISTS tandem_schema (version INTEGER NOT NULL)")
            let current =
                try run(c, "SELECT COALESCE(MAX(version), 0)::bigint FROM tandem_schema").rows.first
                .map { try $0.decode(Int.self) } ?? 0
            guard current < Self.schemaVersion else { return }
            _ = try run(
                c,
                """
                CREATE TABLE IF NOT EXISTS escalation (
                    id UUID PRIMARY KEY,
                    device TEXT NOT NULL,
                    stream TEXT NOT NULL,
                    payload BYTEA NOT NULL,
                    response_topic TEXT NOT NULL,
                    edge_label INTEGER NOT NULL,
                    edge_confidence DOUBLE PRECISION NOT NULL,
                    edge_model TEXT NOT NULL,
                    received_at DOUBLE PRECISION NOT NULL,
                    claimed_by TEXT,
                    claimed_at DOUBLE PRECISION,
                    verdict_label INTEGER,
                    verdict_probabilities REAL[],
                    cloud_model TEXT,
                    answered_at DOUBLE PRECISION
                )
                """)
            _ = try run(
                c, "CREATE INDEX IF NOT EXISTS escalation_unanswered ON escalation (answered_at, received_at)")
            _ = try run(c, "CREATE INDEX IF NOT EXISTS escalation_device ON escalation (device, received_at)")
            _ = try run(
                c,
                """
                CREATE TABLE IF NOT EXISTS label (
                    escalation_id UUID PRIMARY KEY,
                    label INTEGER NOT NULL,
                    recorded_at DOUBLE PRECISION NOT NULL
                )
                """)
            _ = try run(c, "CREATE INDEX IF NOT EXISTS label_recorded ON label (recorded_at)")
            _ = try run(c, "CREATE INDEX IF NOT EXISTS escalation_received ON escalation (received_at)")
            _ = try run(
                c,
                """
                CREATE TABLE IF NOT EXISTS training_lease (
                    name TEXT PRIMARY KEY,
                    holder TEXT NOT NULL,
                    expires_at DOUBLE PRECISION NOT NULL
                )
                """)
            _ = try run(
                c,
                """
                CREATE TABLE IF NOT EXISTS retraining_round (
                    id BIGSERIAL PRIMARY KEY,
                    started_at DOUBLE PRECISION NOT NULL,
                    finished_at DOUBLE PRECISION NOT NULL,
                    passed BOOLEAN NOT NULL,
                    summary TEXT NOT NULL,
                    version TEXT,
                    outcome TEXT,
                    report TEXT
                )
                """)
            try migrateOrigins(c)
            try migrateWindowTimes(c)
            _ = try run(c, "DELETE FROM tandem_schema")
            _ = try run(c, "INSERT INTO tandem_schema (version) VALUES (\(Self.schemaVersion))")
        }
    }

    /// Adds the window's start (on the device's clock), which time-range labels select by, to a table made before
    /// it; earlier rows keep NULL and are matched by their arrival time. Runs inside the migration's transaction and
    /// advisory lock.
    private func migrateWindowTimes(_ c: PostgresConnection) throws {
        _ = try run(c, "ALTER TABLE escalation ADD COLUMN IF NOT EXISTS window_start DOUBLE PRECISION")
        _ = try run(
            c, "CREATE INDEX IF NOT EXISTS escalation_stream_window ON escalation (device, stream, window_start)")
        // Audits are told by their payload's first four bytes; the estimates find them through this index.
        let audit = try run(c, "SELECT to_regclass('escalation_audit') IS NOT NULL").rows.first
        if try !(audit?.decode(Bool.self) ?? false) {
            _ = try run(
                c, "CREATE INDEX escalation_audit ON escalation ((substring(payload from 1 for 4)), received_at)")
        }
    }

    /// Adds the escalation's fleet, claim count and terminal state, and the label's origin, to tables made before
    /// them; rows stored earlier get their fleet from their verdict topic where it is the device's own. Runs inside
    /// the migration's transaction and advisory lock.
    private func migrateOrigins(_ c: PostgresConnection) throws {
        let present =
            try run(
                c,
                """
                SELECT COUNT(*) FROM information_schema.columns
                WHERE table_schema = current_schema() AND table_name = 'escalation' AND column_name = 'fleet'
                """
            ).rows.first.map { try $0.decode(Int.self) } ?? 0
        guard present == 0 else { return }
        _ = try run(
            c,
            """
            ALTER TABLE escalation ADD COLUMN fleet TEXT, ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0,
            ADD COLUMN terminal_reason TEXT, ADD COLUMN terminal_at DOUBLE PRECISION
            """)
        _ = try run(c, "ALTER TABLE label ADD COLUMN fleet TEXT, ADD COLUMN device TEXT")
        _ = try run(
            c,
            """
            UPDATE escalation SET fleet = split_part(response_topic, '/', 3)
            WHERE response_topic = 'tandem/v1/' || split_part(response_topic, '/', 3) || '/' || device || '/verdicts'
            """)
    }

    /// Drops every table (tests and tear-down of a throwaway database).
    public func dropAll() throws {
        try withConnection { c in
            _ = try run(c, "DROP TABLE IF EXISTS escalation, label, training_lease, retraining_round, tandem_schema")
        }
    }
}

extension PostgresSampleStore: EscalationStore {
    /// One statement for the whole batch (arrays unnested into rows): one round trip, not one a row. A missing fleet
    /// travels as "" and a missing window start as NaN, both read back as NULL.
    public func insert(_ escalations: [SampleStore.Escalation]) throws -> [Bool] {
        guard !escalations.isEmpty else { return [] }
        let e = escalations
        let inserted = try withConnection { c in
            try run(
                c,
                """
                INSERT INTO escalation (id, device, stream, payload, response_topic, edge_label, edge_confidence,
                edge_model, received_at, fleet, window_start)
                SELECT id::uuid, device, stream, payload, response_topic, edge_label, edge_confidence, edge_model,
                received_at, NULLIF(fleet, ''), NULLIF(window_start, 'NaN'::float8)
                FROM UNNEST(\(e.map(\.id.uuidString))::text[], \(e.map(\.device))::text[], \(e.map(\.stream))::text[],
                \(e.map { ByteBuffer(bytes: $0.payload) })::bytea[], \(e.map(\.responseTopic))::text[],
                \(e.map(\.edgeLabel))::int8[], \(e.map(\.edgeConfidence))::float8[], \(e.map(\.edgeModel))::text[],
                \(e.map(\.receivedAt))::float8[], \(e.map { $0.fleet ?? "" })::text[],
                \(e.map { $0.windowStart ?? .nan })::float8[])
                AS batch(id, device, stream, payload, response_topic, edge_label, edge_confidence, edge_model,
                received_at, fleet, window_start)
                ON CONFLICT (id) DO NOTHING RETURNING id
                """
            ).rows.map { try $0.decode(UUID.self) }
        }
        // An id twice in one batch is stored once: its first occurrence is the new one.
        var new = Set(inserted)
        return escalations.map { new.remove($0.id) != nil }
    }

    /// One statement for the whole batch, as ``insert(_:)``; the probabilities travel as array literals (`{0.1,0.9}`),
    /// since an array of arrays would be unnested into single numbers. The first verdict for an id wins, in a batch as
    /// across batches.
    public func answer(_ verdicts: [(id: UUID, verdict: SampleStore.StoredVerdict)], at time: Double) throws {
        var seen = Set<UUID>()
        let first = verdicts.filter { seen.insert($0.id).inserted }
        guard !first.isEmpty else { return }
        let probabilities = first.map { v in
            "{" + v.verdict.probabilities.map { $0.isFinite ? String($0) : "0" }.joined(separator: ",") + "}"
        }
        _ = try withConnection { c in
            try run(
                c,
                """
                UPDATE escalation AS e SET verdict_label = v.label, verdict_probabilities = v.probabilities::real[],
                cloud_model = v.model, answered_at = \(time)
                FROM UNNEST(\(first.map(\.id))::uuid[], \(first.map(\.verdict.label))::int8[], \(probabilities)::text[],
                \(first.map(\.verdict.model))::text[]) AS v(id, label, probabilities, model)
                WHERE e.id = v.id AND e.answered_at IS NULL
                """)
        }
    }

    public func verdict(for id: UUID) throws -> SampleStore.StoredVerdict? {
        try withConnection { c in
            let result = try run(
                c, "SELECT verdict_label, verdict_probabilities, cloud_model FROM escalation WHERE id = \(id)")
            guard let row = result.rows.first else { return nil }
            let (label, probabilities, model) = try row.decode((Int?, [Float]?, String?).self)
            guard let label, let probabilities, let model else { return nil }
            return SampleStore.StoredVerdict(label: label, probabilities: probabilities, model: model)
        }
    }

    public func claimStale(worker: String, staleSeconds: Double, now: Double, limit: Int, maximumClaims: Int) throws
        -> SampleStore.Claim
    {
        try withConnection { c in
            let before = now - staleSeconds
            // One statement: rows claimed `maximumClaims` times already are given up, the others claimed; locked
            // rows (another worker's claim in progress) are skipped.
            let result = try run(
                c,
                """
                WITH stale AS (
                    SELECT id, attempts >= \(maximumClaims) AS spent FROM escalation
                    WHERE answered_at IS NULL AND terminal_reason IS NULL AND received_at < \(before)
                    AND (claimed_at IS NULL OR claimed_at < \(before)) ORDER BY received_at LIMIT \(limit)
                    FOR UPDATE SKIP LOCKED)
                UPDATE escalation e SET
                    claimed_by = CASE WHEN s.spent THEN e.claimed_by ELSE \(worker) END,
                    claimed_at = CASE WHEN s.spent THEN e.claimed_at ELSE \(now) END,
                    attempts = CASE WHEN s.spent THEN e.attempts ELSE e.attempts + 1 END,
                    terminal_reason = CASE WHEN s.spent THEN \(SampleStore.TerminalReason.gaveUp.rawValue) END,
                    terminal_at = CASE WHEN s.spent THEN \(now) END
                FROM stale s WHERE e.id = s.id
                RETURNING e.id, e.device, e.stream, e.payload, e.response_topic, e.edge_label, e.edge_confidence,
                e.edge_model, e.received_at, e.fleet, s.spent
                """)
            var claim = SampleStore.Claim()
            let rows = try result.rows.map { row in
                try row.decode(
                    (UUID, String, String, ByteBuffer, String, Int, Double, String, Double, String?, Bool).self)
            }.sorted { $0.8 < $1.8 }
            for (id, device, stream, payload, topic, label, confidence, model, received, fleet, spent) in rows {
                let escalation = SampleStore.Escalation(
                    id: id, device: device, stream: stream, payload: Array(buffer: payload), responseTopic: topic,
                    edgeLabel: label, edgeConfidence: confidence, edgeModel: model, receivedAt: received, fleet: fleet)
                if spent { claim.givenUp.append(escalation) } else { claim.escalations.append(escalation) }
            }
            return claim
        }
    }

    public func markTerminal(_ ids: [UUID], reason: SampleStore.TerminalReason, at time: Double) throws -> [UUID] {
        guard !ids.isEmpty else { return [] }
        return try withConnection { c in
            try run(
                c,
                """
                UPDATE escalation SET terminal_reason = \(reason.rawValue), terminal_at = \(time)
                WHERE id = ANY(\(ids)) AND answered_at IS NULL AND terminal_reason IS NULL RETURNING id
                """
            ).rows.map { try $0.decode(UUID.self) }
        }
    }

    public func terminalCounts() throws -> [SampleStore.TerminalReason: Int] {
        try withConnection { c in
            var counts = [SampleStore.TerminalReason: Int]()
            for row in try run(
                c,
                """
                SELECT terminal_reason, COUNT(*) FROM escalation WHERE terminal_reason IS NOT NULL
                GROUP BY terminal_reason
                """
            ).rows {
                let (reason, count) = try row.decode((String, Int).self)
                if let reason = SampleStore.TerminalReason(rawValue: reason) { counts[reason] = count }
            }
            return counts
        }
    }

    public func counts() throws -> (rows: Int, answered: Int) {
        try withConnection { c in
            let result = try run(
                c, "SELECT COUNT(*), COUNT(answered_at) FROM escalation")
            guard let row = result.rows.first else { return (0, 0) }
            let (rows, answered) = try row.decode((Int, Int).self)
            return (rows, answered)
        }
    }

    public func ids() throws -> [UUID] {
        try withConnection { c in
            try run(c, "SELECT id FROM escalation").rows.map { try $0.decode(UUID.self) }
        }
    }
}

extension PostgresSampleStore {
    public func recordLabels(
        _ labels: [(id: UUID, label: Int)], from origin: SampleStore.LabelOrigin, at time: Double
    ) throws -> [SampleStore.LabelOutcome] {
        let (fleet, device): (String?, String?) =
            switch origin {
            case .operator: (nil, nil)
            case .device(let fleet, let device): (fleet, device)
            }
        return try transaction { c in
            try labels.map { id, label in
                let owner = try run(c, "SELECT fleet, device FROM escalation WHERE id = \(id)").rows.first
                    .map { try $0.decode((String?, String).self) }
                let ownEscalation = owner.map { $0.0 == fleet && $0.1 == device }
                if device != nil, ownEscalation == false { return .otherDevice }
                // A device replaces its own earlier label, or any device's label on its own escalation; never an
                // operator's.
                let written = try run(
                    c,
                    """
                    INSERT INTO label (escalation_id, label, recorded_at, fleet, device)
                    VALUES (\(id), \(label), \(time), \(fleet), \(device))
                    ON CONFLICT (escalation_id) DO UPDATE SET label = EXCLUDED.label, recorded_at = EXCLUDED.recorded_at,
                    fleet = EXCLUDED.fleet, device = EXCLUDED.device
                    WHERE EXCLUDED.device IS NULL OR (label.device IS NOT NULL AND (\(ownEscalation == true)
                    OR (label.fleet IS NOT DISTINCT FROM EXCLUDED.fleet AND label.device = EXCLUDED.device)))
                    RETURNING escalation_id
                    """
                ).rows.count
                guard written == 1 else { return .labelledByOthers }
                return owner == nil ? .pending : .matched
            }
        }
    }

    /// Labels every stored escalation of `range` as an operator's ground truth (``EscalationStore/labelRange(_:label:at:)``).
    public func labelRange(_ range: TimeRangeLabel, label: Int, at time: Double) throws -> Int {
        try transaction { c in
            try run(
                c,
                """
                INSERT INTO label (escalation_id, label, recorded_at, fleet, device)
                SELECT id, \(label), \(time), NULL, NULL FROM escalation
                WHERE device = \(range.device) AND stream = \(range.stream)
                AND (\(range.fleet)::TEXT IS NULL OR fleet = \(range.fleet))
                AND COALESCE(window_start, received_at) BETWEEN \(range.start) AND \(range.end)
                ON CONFLICT (escalation_id) DO UPDATE SET label = EXCLUDED.label, recorded_at = EXCLUDED.recorded_at,
                fleet = NULL, device = NULL
                RETURNING escalation_id
                """
            ).rows.count
        }
    }

    public func unlabelled(limit: Int) throws -> [SampleStore.UnlabelledEscalation] {
        try withConnection { c in
            try run(
                c,
                """
                SELECT e.id, e.fleet, e.device, e.stream, e.edge_label, e.edge_confidence, e.verdict_label,
                e.verdict_probabilities, e.received_at, e.window_start FROM escalation e
                WHERE e.answered_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM label l WHERE l.escalation_id = e.id)
                ORDER BY e.received_at DESC LIMIT \(max(0, limit))
                """
            ).rows.map { row in
                let (id, fleet, device, stream, edgeLabel, edgeConfidence, verdict, probabilities, received, start) =
                    try row.decode(
                        (UUID, String?, String, String, Int, Double, Int, [Float], Double, Double?).self)
                return SampleStore.UnlabelledEscalation(
                    id: id, fleet: fleet, device: device, stream: stream, edgeLabel: edgeLabel,
                    edgeConfidence: edgeConfidence, verdictLabel: verdict, probabilities: probabilities,
                    receivedAt: received, windowStart: start)
            }
        }
    }

    public func labelCount() throws -> Int {
        try withConnection { c in
            try run(c, "SELECT COUNT(*) FROM label").rows.first.map { try $0.decode(Int.self) } ?? 0
        }
    }

    /// The ground truth recorded for an escalation id, if any.
    public func label(for id: UUID) throws -> Int? {
        try withConnection { c in
            try run(c, "SELECT label FROM label WHERE escalation_id = \(id)").rows.first.map { try $0.decode(Int.self) }
        }
    }
}

/// A store that cannot be opened or used, with the reason.
public struct StoreError: Error, CustomStringConvertible {
    /// What failed, naming the store.
    public let description: String

    init(_ description: String) { self.description = description }
}
