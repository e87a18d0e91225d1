import Foundation
import GRDB
import TandemTestSupport
import Testing

@testable import TandemCloud

/// Who may label what, and rows that can never be answered, with the same expectations on SQLite and PostgreSQL;
/// and the migration that adds their columns to stores made before them.
@Suite(.serialized)
struct StoreTrustTests {
    static func escalation(_ id: UUID, fleet: String?, device: String, at time: Double) -> SampleStore.Escalation {
        SampleStore.Escalation(
            id: id, device: device, stream: "s", payload: [1, 2, 3], responseTopic: "t", edgeLabel: 1,
            edgeConfidence: 0.4, edgeModel: "e1", receivedAt: time, fleet: fleet)
    }

    /// A device labels only its own escalations; only labels that label a stored escalation count.
    static func labelOrigins(_ store: any EscalationStore & TrainingStore) throws {
        let mine = UUID(), theirs = UUID(), otherFleet = UUID(), operatorFirst = UUID(), early = UUID(), stolen = UUID()
        let a = SampleStore.LabelOrigin.device(fleet: "f", device: "a")
        let b = SampleStore.LabelOrigin.device(fleet: "f", device: "b")
        try store.insert(escalation(mine, fleet: "f", device: "a", at: 100))
        try store.insert(escalation(theirs, fleet: "f", device: "b", at: 101))
        try store.insert(escalation(otherFleet, fleet: "g", device: "a", at: 102))
        try store.insert(escalation(operatorFirst, fleet: "f", device: "a", at: 103))

        #expect(try store.recordLabels([(mine, 1)], from: a, at: 200) == [.matched])
        #expect(try store.recordLabels([(theirs, 1)], from: a, at: 200) == [.otherDevice])
        #expect(
            try store.recordLabels([(otherFleet, 1)], from: a, at: 200) == [.otherDevice],
            "the same device name in another fleet is another device")
        try store.recordLabels([(operatorFirst, 0)], at: 199)
        #expect(try store.recordLabels([(operatorFirst, 2)], from: a, at: 200) == [.labelledByOthers])
        #expect(try store.recordLabels([(early, 1)], from: a, at: 201) == [.pending])
        #expect(try store.recordLabels([(stolen, 1)], from: a, at: 201) == [.pending])

        // Counted: mine and the operator's; not the refused ones, not the two waiting for their escalation.
        #expect(try store.labelCount(recordedAfter: 150) == 2)
        #expect(try store.labelCount() == 4, "pending labels are kept")
        try store.insert(escalation(early, fleet: "f", device: "a", at: 300))
        try store.insert(escalation(stolen, fleet: "f", device: "b", at: 300))
        #expect(try store.labelCount(recordedAfter: 150) == 3, "early counts once its escalation arrived; stolen never")
        #expect(try store.labelCount(recordedAfter: 250) == 1, "a label counts from when it matched (300)")
        #expect(
            try store.edgeAccuracy(of: ["e1"], receivedSince: 0) == ["e1": .init(correct: 2, labelled: 3)],
            "a's label on b's escalation is not a label of it")

        // b labels its own escalation, replacing a's label; a can neither replace it back nor touch theirs.
        #expect(try store.recordLabels([(stolen, 0)], from: b, at: 310) == [.matched])
        #expect(try store.recordLabels([(stolen, 2)], from: a, at: 311) == [.otherDevice])
        #expect(try store.labelCount(recordedAfter: 150) == 4)
        #expect(try store.edgeAccuracy(of: ["e1"], receivedSince: 0) == ["e1": .init(correct: 2, labelled: 4)])
        // An operator replaces any label.
        try store.recordLabels([(stolen, 1)], at: 320)
        #expect(try store.edgeAccuracy(of: ["e1"], receivedSince: 0) == ["e1": .init(correct: 3, labelled: 4)])
        // Accuracy by the devices the cloud gave a version: a's three labelled ones, f's four (pooled: a's 2 right
        // of 3 count as many windows as b's 1 right of 1, so 2/3 + 1 right of 2, rounded to 2), none of g's.
        #expect(
            try store.edgeAccuracy(of: "e1", fleet: "f", devices: ["a"], receivedSince: 0, auditsOnly: false)
                == .init(correct: 2, labelled: 3))
        #expect(
            try store.edgeAccuracy(of: "e1", fleet: "f", devices: nil, receivedSince: 0, auditsOnly: false)
                == .init(correct: 2, labelled: 2))
        #expect(
            try store.edgeAccuracy(of: "e1", fleet: "f", devices: [], receivedSince: 0, auditsOnly: false)
                == .init(correct: 0, labelled: 0))
        #expect(
            try store.edgeAccuracy(of: "e1", fleet: "g", devices: nil, receivedSince: 0, auditsOnly: false)
                == .init(correct: 0, labelled: 0))
        #expect(
            try store.edgeAccuracy(of: "e1", fleet: "f", devices: ["a"], receivedSince: 250, auditsOnly: false)
                == .init(correct: 1, labelled: 1))
        // Audits alone: rows stored with an audit payload's first bytes (magic, version 3, reason 2), one labelled
        // wrong; an uncertain version 3 escalation and a row of version 2 with that byte are not audits.
        let audit = UUID(), unsure = UUID(), older = UUID()
        for (id, prefix) in [
            (audit, [0x54, 0x45, 0x03, 0x02]), (unsure, [0x54, 0x45, 0x03, 0x00]), (older, [0x54, 0x45, 0x02, 0x02]),
        ] {
            var row = escalation(id, fleet: "f", device: "a", at: 400)
            row.payload = prefix.map(UInt8.init) + [7, 7]
            try store.insert(row)
            try store.recordLabels([(id, 0)], at: 410)
        }
        #expect(
            try store.edgeAccuracy(of: "e1", fleet: "f", devices: nil, receivedSince: 0, auditsOnly: true)
                == .init(correct: 0, labelled: 1))
        // Pooled over the devices (a: 2 right of 6, b: 1 of 1), each counting at most the lower-median device's
        // windows (1): 2/6 + 1 right of 2, rounded to 1, where a plain sum says 3 of 7.
        #expect(
            try store.edgeAccuracy(of: "e1", fleet: "f", devices: nil, receivedSince: 0, auditsOnly: false)
                == .init(correct: 1, labelled: 2))
    }

    /// A row is claimed at most `maximumClaims` times, then given up; a terminal row is never claimed again.
    static func terminalRows(_ store: any EscalationStore) throws {
        let stuck = UUID(), wrong = UUID(), answered = UUID()
        try store.insert(escalation(stuck, fleet: "f", device: "a", at: 100))
        func claim(_ now: Double) throws -> SampleStore.Claim {
            try store.claimStale(worker: "w", staleSeconds: 5, now: now, limit: 10, maximumClaims: 2)
        }
        #expect(try claim(110).escalations.map(\.id) == [stuck])
        #expect(try claim(112) == SampleStore.Claim(), "claimed 2 s ago: not stale yet")
        #expect(try claim(120).escalations.map(\.id) == [stuck])
        let third = try claim(130)
        #expect(third.escalations.isEmpty && third.givenUp.map(\.id) == [stuck])
        #expect(third.givenUp.first?.fleet == "f" && third.givenUp.first?.device == "a")
        #expect(try claim(1000) == SampleStore.Claim(), "a terminal row is never claimed again")

        try store.insert(escalation(wrong, fleet: "f", device: "a", at: 100))
        try store.insert(escalation(answered, fleet: "f", device: "a", at: 100))
        try store.answer([(answered, .init(label: 0, probabilities: [1, 0], model: "m"))], at: 101)
        #expect(try store.markTerminal([wrong, answered], reason: .wrongShape, at: 140) == [wrong])
        #expect(try store.markTerminal([wrong], reason: .undecodable, at: 141) == [], "marked once only")
        #expect(try store.terminalCounts() == [.gaveUp: 1, .wrongShape: 1])
        #expect(try claim(2000) == SampleStore.Claim())
        #expect(try store.counts() == (rows: 3, answered: 1))
    }

    @Test("SQLite: a device labels only its own escalations, only matching labels count; rows given up stay so")
    func sqliteRules() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        try Self.labelOrigins(SampleStore(path: scratch.url.appendingPathComponent("labels.sqlite").path))
        try Self.terminalRows(SampleStore(path: scratch.url.appendingPathComponent("terminal.sqlite").path))
    }

    @Test(
        "PostgreSQL: the same label and terminal rules",
        .enabled(if: PostgresCluster.isAvailable, "PostgreSQL server binaries are not installed"))
    func postgresRules() async throws {
        try await PostgresCluster.with { cluster in
            let store = try PostgresSampleStore(url: cluster.url)
            try Self.labelOrigins(store)
            try store.dropAll()
            let fresh = try PostgresSampleStore(url: cluster.url)
            try Self.terminalRows(fresh)
            try fresh.dropAll()
        }
    }

    @Test("a SQLite store made before fleets and terminal rows migrates: the fleet comes from the verdict topic")
    func sqliteMigration() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.url.appendingPathComponent("tandem.sqlite").path
        let own = UUID(), foreign = UUID()
        do {
            let pool = try DatabasePool(path: path)
            try SampleStore.migrator.migrate(pool, upTo: "3: round details")
            try pool.write { db in
                for (id, topic) in [(own, "tandem/v1/plant-a/d1/verdicts"), (foreign, "tandem/v1/plant-a/d9/verdicts")]
                {
                    try db.execute(
                        sql: """
                            INSERT INTO escalation (id, device, stream, payload, response_topic, edge_label,
                            edge_confidence, edge_model, received_at) VALUES (?, 'd1', 's', x'010203', ?, 0, 0.5, 'e1', 10)
                            """, arguments: [id.uuidString, topic])
                }
                try db.execute(
                    sql: "INSERT INTO label (escalation_id, label, recorded_at) VALUES (?, 1, 20)",
                    arguments: [foreign.uuidString])
            }
        }
        let store = try SampleStore(path: path)
        #expect(
            try store.recordLabels([(own, 2)], from: .device(fleet: "plant-a", device: "d1"), at: 30) == [.matched],
            "the fleet was taken from the device's own verdict topic")
        #expect(
            try store.recordLabels([(foreign, 2)], from: .device(fleet: "plant-a", device: "d1"), at: 30)
                == [.otherDevice], "a verdict topic naming another device tells no fleet")
        #expect(try store.labelCount(recordedAfter: 0) == 2, "an operator's label from before counts")
        #expect(
            try store.claimStale(worker: "w", staleSeconds: 1, now: 100, limit: 10, maximumClaims: 0).givenUp.count == 2
        )
    }

    @Test(
        "a PostgreSQL store made before fleets and terminal rows migrates: the fleet comes from the verdict topic",
        .enabled(if: PostgresCluster.isAvailable, "PostgreSQL server binaries are not installed"))
    func postgresMigration() async throws {
        try await PostgresCluster.with { cluster in
            let own = UUID(), foreign = UUID()
            do {
                // The tables as they were: today's, without the columns the migration adds.
                let old = try PostgresSampleStore(url: cluster.url)
                try old.withConnection { c in
                    _ = try old.run(
                        c,
                        """
                        ALTER TABLE escalation DROP COLUMN fleet, DROP COLUMN attempts, DROP COLUMN terminal_reason,
                        DROP COLUMN terminal_at
                        """)
                    _ = try old.run(c, "ALTER TABLE label DROP COLUMN fleet, DROP COLUMN device")
                    _ = try old.run(c, "DROP TABLE tandem_schema")  // made later than these columns
                    for (id, topic) in [
                        (own, "tandem/v1/plant-a/d1/verdicts"), (foreign, "tandem/v1/plant-a/d9/verdicts"),
                    ] {
                        _ = try old.run(
                            c,
                            """
                            INSERT INTO escalation (id, device, stream, payload, response_topic, edge_label,
                            edge_confidence, edge_model, received_at) VALUES (\(id), 'd1', 's', '\\x010203', \(topic), 0,
                            0.5, 'e1', 10)
                            """)
                    }
                    _ = try old.run(
                        c, "INSERT INTO label (escalation_id, label, recorded_at) VALUES (\(foreign), 1, 20)")
                }
            }
            let store = try PostgresSampleStore(url: cluster.url)
            #expect(
                try store.recordLabels([(own, 2)], from: .device(fleet: "plant-a", device: "d1"), at: 30) == [.matched])
            #expect(
                try store.recordLabels([(foreign, 2)], from: .device(fleet: "plant-a", device: "d1"), at: 30)
                    == [.otherDevice])
            #expect(try store.labelCount(recordedAfter: 0) == 2)
            #expect(
                try store.claimStale(worker: "w", staleSeconds: 1, now: 100, limit: 10, maximumClaims: 0).givenUp.count
                    == 2)
            // Opening again finds everything in place.
            _ = try PostgresSampleStore(url: cluster.url)
            try store.dropAll()
        }
    }

    @Test("a new SQLite store, its WAL and shared-memory files are open to their owner only")
    func storeFileModes() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let previous = umask(0o022)
        defer { umask(previous) }
        let path = scratch.url.appendingPathComponent("tandem.sqlite").path
        let store = try SampleStore(path: path)
        try store.insert(Self.escalation(UUID(), fleet: "f", device: "a", at: 1))
        for file in [path, path + "-wal", path + "-shm", path + ".migration-lock"] {
            let attributes = try FileManager.default.attributesOfItem(atPath: file)
            let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
            #expect(mode == 0o600, "\(file): \(String(mode, radix: 8))")
        }
    }
}
