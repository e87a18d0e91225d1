import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import Synchronization

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

    private func migrate() throws {
        try transaction { c in
            // Workers starting together: one migrates, the others wait for its lock.
            _ = try run(c, "SELECT pg_advisory_xact_lock(724265001)")
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
        }
    }

    /// Drops every table (tests and tear-down of a throwaway database).
    public func dropAll() throws {
        try withConnection { c in
            _ = try run(c, "DROP TABLE IF EXISTS escalation, label, training_lease, retraining_round")
        }
    }
}

extension PostgresSampleStore: EscalationStore {
    public func insert(_ escalations: [SampleStore.Escalation]) throws -> [Bool] {
        try transaction { c in
            try escalations.map { e in
                let result = try run(
                    c,
                    """
                    INSERT INTO escalation (id, device, stream, payload, response_topic, edge_label, edge_confidence,
                    edge_model, received_at) VALUES (\(e.id), \(e.device), \(e.stream), \(ByteBuffer(bytes: e.payload)),
                    \(e.responseTopic), \(e.edgeLabel), \(e.edgeConfidence), \(e.edgeModel), \(e.receivedAt))
                    ON CONFLICT (id) DO NOTHING RETURNING id
                    """)
                return result.rows.count == 1
            }
        }
    }

    public func answer(_ verdicts: [(id: UUID, verdict: SampleStore.StoredVerdict)], at time: Double) throws {
        try transaction { c in
            for (id, v) in verdicts {
                _ = try run(
                    c,
                    """
                    UPDATE escalation SET verdict_label = \(v.label), verdict_probabilities = \(v.probabilities),
                    cloud_model = \(v.model), answered_at = \(time) WHERE id = \(id) AND answered_at IS NULL
                    """)
            }
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

    public func claimStale(worker: String, staleSeconds: Double, now: Double, limit: Int) throws
        -> [SampleStore.Escalation]
    {
        try withConnection { c in
            let before = now - staleSeconds
            let result = try run(
                c,
                """
                UPDATE escalation SET claimed_by = \(worker), claimed_at = \(now) WHERE id IN (
                    SELECT id FROM escalation WHERE answered_at IS NULL AND received_at < \(before)
                    AND (claimed_at IS NULL OR claimed_at < \(before)) ORDER BY received_at LIMIT \(limit)
                    FOR UPDATE SKIP LOCKED)
                RETURNING id, device, stream, payload, response_topic, edge_label, edge_confidence, edge_model,
                received_at
                """)
            return try result.rows.map { row in
                let (id, device, stream, payload, topic, label, confidence, model, received) = try row.decode(
                    (UUID, String, String, ByteBuffer, String, Int, Double, String, Double).self)
                return SampleStore.Escalation(
                    id: id, device: device, stream: stream, payload: Array(buffer: payload), responseTopic: topic,
                    edgeLabel: label, edgeConfidence: confidence, edgeModel: model, receivedAt: received)
            }.sorted { $0.receivedAt < $1.receivedAt }
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
    /// Records the ground truth for an escalation id (before or after the escalation itself arrives; a later
    /// label replaces an earlier one).
    public func recordLabel(id: UUID, label: Int, at time: Double = Date().timeIntervalSince1970) throws {
        try recordLabels([(id, label)], at: time)
    }

    public func recordLabels(_ labels: [(id: UUID, label: Int)], at time: Double) throws {
        try transaction { c in
            for (id, label) in labels {
                _ = try run(
                    c,
                    """
                    INSERT INTO label (escalation_id, label, recorded_at) VALUES (\(id), \(label), \(time))
                    ON CONFLICT (escalation_id) DO UPDATE SET label = EXCLUDED.label, recorded_at = EXCLUDED.recorded_at
                    """)
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
