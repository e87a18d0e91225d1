import Foundation
import TandemCloud
import TandemEdge
import TandemProtocol
import TandemTestSupport
import Testing

/// The retraining loop's store on PostgreSQL: the lease, the record of rounds, training examples and the edge's
/// label accuracy, against a throwaway cluster and, for the same data, the SQLite store.
@Suite(
    .serialized, .timeLimit(.minutes(4)),
    .enabled(if: PostgresCluster.isAvailable, "PostgreSQL server binaries are not installed"))
struct PostgresTrainingStoreTests {
    @Test("one holder has the lease: the other is refused until it expires or is released; a race has one winner")
    func lease() async throws {
        try await PostgresCluster.with { cluster in
            // Two handles (two connections) stand for two workers.
            let a = try PostgresSampleStore(url: cluster.url)
            let b = try PostgresSampleStore(url: cluster.url)
            #expect(try a.trainingLease() == nil)
            #expect(try a.acquireTrainingLease(holder: "a", durationSeconds: 30, now: 100))
            #expect(try !b.acquireTrainingLease(holder: "b", durationSeconds: 30, now: 110))
            #expect(try a.acquireTrainingLease(holder: "a", durationSeconds: 30, now: 120), "the holder renews")
            let lease = try b.trainingLease()
            #expect(lease?.holder == "a" && lease?.expiresAt == 150, "\(String(describing: lease))")
            #expect(try !b.acquireTrainingLease(holder: "b", durationSeconds: 30, now: 149.9))
            // Expired (at the expiry itself, as in the SQLite store): the other takes it and the first is refused.
            #expect(try b.acquireTrainingLease(holder: "b", durationSeconds: 30, now: 150))
            #expect(try !a.acquireTrainingLease(holder: "a", durationSeconds: 30, now: 151))
            try a.releaseTrainingLease(holder: "a")
            #expect(try a.trainingLease()?.holder == "b", "only the holder releases")
            try b.releaseTrainingLease(holder: "b")
            #expect(try a.trainingLease() == nil)
            #expect(try a.acquireTrainingLease(holder: "a", durationSeconds: 30, now: 152), "released: free at once")
            try a.releaseTrainingLease(holder: "a")

            // Two workers racing for a free lease at the same moment, 30 times: exactly one wins each time.
            let stores = [a, b]
            for round in 0..<30 {
                let now = 1000 + Double(round)
                let wins = await withTaskGroup(of: Bool.self) { group in
                    for (k, store) in stores.enumerated() {
                        group.addTask {
                            (try? store.acquireTrainingLease(holder: "w\(k)", durationSeconds: 60, now: now)) ?? false
                        }
                    }
                    return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
                }
                #expect(wins == 1, "round \(round): \(wins) winners")
                let holder = try #require(try a.trainingLease()).holder
                try stores[holder == "w0" ? 0 : 1].releaseTrainingLease(holder: holder)
            }
        }
    }

    /// A window payload as a device sends it.
    func payload(_ id: UUID, value: Float, reason: EscalationReason = .uncertain) throws -> [UInt8] {
        try EscalationPayload(
            id: id, device: "d1", stream: "vib", modelVersion: "e1", windowStart: 0, windowEnd: 1,
            sampleRateHz: 100, channels: 2, length: 3, window: [value, 1, 2, 3, 4, 5],
            topK: [.init(label: 0, probability: 0.4)], confidence: 0.4, reason: reason
        ).encoded()
    }

    @Test("training examples, counts, rounds and label accuracy round-trip as in the SQLite store")
    func sameAsSQLite() async throws {
        let ids = (0..<7).map { _ in UUID() }
        // (payload, edge model, edge label, received at, verdict, ground truth)
        let rows: [(payload: [UInt8], model: String, edgeLabel: Int, at: Double, verdict: Int?, truth: Int?)] = [
            (try payload(ids[0], value: 0.5), "e1", 1, 100, 1, 2),  // ground truth wins over the verdict
            (try payload(ids[1], value: 1.5), "e1", 1, 101, 0, nil),  // the verdict as teacher label
            (try payload(ids[2], value: 2.5), "e2", 0, 102, nil, 1),  // ground truth, not answered yet
            (try payload(ids[3], value: 3.5), "e2", 1, 103, nil, nil),  // neither: not an example
            ([1, 2, 3], "e2", 1, 104, 0, 0),  // does not decode: counted, skipped
            (try payload(ids[5], value: 5.5), "e1", 0, 105, 2, 0),
            (try payload(ids[6], value: 6.5, reason: .audit), "e1", 0, 106, nil, nil),  // an audit: not a hard example
        ]
        func fill(_ store: any EscalationStore & TrainingStore) throws {
            for (k, row) in rows.enumerated() {
                try store.insert(
                    SampleStore.Escalation(
                        id: ids[k], device: "d1", stream: "vib", payload: row.payload, responseTopic: "t",
                        edgeLabel: row.edgeLabel, edgeConfidence: 0.4, edgeModel: row.model, receivedAt: row.at))
                if let verdict = row.verdict {
                    try store.answer(
                        [
                            (
                                ids[k],
                                SampleStore.StoredVerdict(label: verdict, probabilities: [0.2, 0.5, 0.3], model: "f")
                            )
                        ],
                        at: row.at + 1)
                }
            }
            try store.recordLabels(
                rows.indices.compactMap { k in rows[k].truth.map { (ids[k], $0) } }, at: 200)
            try store.recordLabels([(UUID(), 1)], at: 300)  // for an escalation not stored (yet)
            try store.recordRound(.init(startedAt: 10, finishedAt: 15, passed: false, summary: "first"))
            try store.recordRound(
                .init(
                    startedAt: 20, finishedAt: 29, passed: true, summary: "second", version: "e2", outcome: "promoted",
                    report: "{\"passed\":true}"))
        }
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let sqlite = try SampleStore(path: scratch.url.appendingPathComponent("tandem.sqlite").path)
        try fill(sqlite)
        try await PostgresCluster.with { cluster in
            let postgres = try PostgresSampleStore(url: cluster.url)
            try fill(postgres)

            let examples = try postgres.trainingExamples(receivedAfter: nil, limit: nil)
            #expect(examples.undecodable == 1)
            #expect(examples.examples.map(\.id) == [ids[0], ids[1], ids[2], ids[5]])
            #expect(examples.examples.map(\.label) == [2, 0, 1, 0])
            #expect(examples.examples.map(\.source) == [.groundTruth, .verdict, .groundTruth, .groundTruth])
            #expect(examples.examples.first?.window == [0.5, 1, 2, 3, 4, 5])
            #expect(examples.examples.first?.edgeModel == "e1" && examples.examples.first?.channels == 2)
            let fromSQLite = try sqlite.trainingExamples(receivedAfter: nil, limit: nil)
            #expect(examples.examples == fromSQLite.examples && examples.undecodable == fromSQLite.undecodable)
            for (after, limit) in [(100.5, nil), (nil, 2), (101.0, 1)] as [(Double?, Int?)] {
                let p = try postgres.trainingExamples(receivedAfter: after, limit: limit)
                let s = try sqlite.trainingExamples(receivedAfter: after, limit: limit)
                #expect(
                    p.examples.map(\.id) == s.examples.map(\.id),
                    "after \(String(describing: after)), \(String(describing: limit))")
            }
            #expect(
                try postgres.trainingExamples(receivedAfter: 100.5, limit: 2).examples.map(\.id) == [ids[1], ids[2]])

            #expect(try postgres.hardExampleCount(receivedAfter: 101) == 4)
            // Only labels of stored escalations count: the one for an id not stored does not.
            #expect(try postgres.labelCount(recordedAfter: 199) == 4 && postgres.labelCount(recordedAfter: 200) == 0)
            #expect(try sqlite.hardExampleCount(receivedAfter: 101) == 4 && sqlite.labelCount(recordedAfter: 199) == 4)
            // Audits by arrival, in half-open ranges: the one received at 106 is in [105, 107) only.
            for store in [postgres, sqlite] as [any EscalationStore] {
                #expect(
                    try store.auditEstimates(receivedFrom: 105, before: 107) == [
                        "e1": .init(
                            audits: 1, answered: 0, agreed: 0, labelled: 0, correct: 0)
                    ])
                #expect(try store.auditEstimates(receivedFrom: 100, before: 106).isEmpty, "the end is excluded")
                #expect(try store.auditEstimates(receivedFrom: 106.5, before: 1e9).isEmpty)
                #expect(try store.auditEstimates(receivedSince: 106)["e1"]?.audits == 1)
            }

            let rounds = try postgres.rounds(limit: nil)
            #expect(rounds.map(\.summary) == ["second", "first"])
            #expect(rounds == (try sqlite.rounds(limit: nil)), "every field, optional ones too")
            #expect(try postgres.lastRound()?.outcome == "promoted" && postgres.rounds(limit: 1).count == 1)
            #expect(try postgres.roundOutcomeCounts() == ["promoted": 1, "unrecorded": 1])
            #expect(try postgres.roundOutcomeCounts() == (try sqlite.roundOutcomeCounts()))

            // Label accuracy since 100: e1 right on 1 of 2 labelled (wrong on 0, right on 5), e2 on 0 of 2 (2, 4).
            let accuracy = try postgres.edgeAccuracy(of: ["e1", "e2", "e3"], receivedSince: 100)
            #expect(accuracy == ["e1": .init(correct: 1, labelled: 2), "e2": .init(correct: 0, labelled: 2)])
            #expect(accuracy == (try sqlite.edgeAccuracy(of: ["e1", "e2", "e3"], receivedSince: 100)))
            #expect(try postgres.edgeAccuracy(of: ["e1"], receivedSince: 101) == ["e1": .init(correct: 1, labelled: 1)])

            // A second device's audit, answered as the edge said: the estimates keep the devices apart.
            for store in [postgres, sqlite] as [any EscalationStore] {
                let id = UUID()
                try store.insert(
                    SampleStore.Escalation(
                        id: id, device: "d2", stream: "vib", payload: try payload(id, value: 7.5, reason: .audit),
                        responseTopic: "t", edgeLabel: 1, edgeConfidence: 0.9, edgeModel: "e1", receivedAt: 107))
                try store.answer(
                    [(id, SampleStore.StoredVerdict(label: 1, probabilities: [0.1, 0.8, 0.1], model: "f"))], at: 108)
                #expect(
                    try store.auditEstimatesByDevice(receivedFrom: 100, before: 1e9) == [
                        "e1": [
                            "d1": .init(audits: 1, answered: 0, agreed: 0, labelled: 0, correct: 0),
                            "d2": .init(audits: 1, answered: 1, agreed: 1, labelled: 0, correct: 0),
                        ]
                    ])
            }
            try postgres.dropAll()
        }
    }

    @Test("a canary's label accuracy pools its devices on PostgreSQL too: one loud device weighs as the median one")
    func loudCanaryDevice() async throws {
        try await PostgresCluster.with { cluster in
            let postgres = try PostgresSampleStore(url: cluster.url)
            let fixture = CanaryLabelAccuracyTests()
            let rollout = try fixture.canary()
            try CanaryLabelAccuracyTests.loudCohortDevice(postgres, rollout, at: fixture.t0 + 5)
            CanaryLabelAccuracyTests.expectLoudDeviceBounded(
                try postgres.accuracyComparison(for: rollout), rollout: rollout)
        }
    }

    @Test("a trainer on postgres://… counts, takes the lease, trains and records its round there")
    func trainerOnPostgres() async throws {
        let fixture = try LoopFixture.shared.get()
        try await MosquittoBroker.with { broker in
            try await PostgresCluster.with { cluster in
                let scratch = try ScratchDirectory()
                defer { scratch.remove() }
                let install = try fixture.install(in: scratch.url)
                let store = try PostgresSampleStore(url: cluster.url)
                // Ten answered hard examples in PostgreSQL, with payloads the round counts and skips (it trains on
                // the original data).
                for k in 0..<10 {
                    let id = UUID()
                    try store.insert(
                        SampleStore.Escalation(
                            id: id, device: "press-1", stream: "vib", payload: [UInt8(k)], responseTopic: "t",
                            edgeLabel: 0, edgeConfidence: 0.3, edgeModel: "edge-1",
                            receivedAt: Date().timeIntervalSince1970))
                    try store.answer(
                        [(id, SampleStore.StoredVerdict(label: 1, probabilities: [0, 1, 0, 0, 0], model: "full-1"))],
                        at: Date().timeIntervalSince1970)
                }
                // The drill's candidate is stopped by the gate, so the round ends without a rollout. The worker
                // is made in this process, as `serve --trainer --store-url postgres://…` makes it.
                var configuration = try InProcessWorker.configuration(
                    brokerPort: broker.port, modelPath: install.fullModel.path,
                    dataDirectory: install.dataDirectory.path, workerID: "pg")
                configuration.storeURL = cluster.url
                configuration.http = nil
                var trainer = CloudWorker.Trainer(
                    trainingDataPath: install.trainingData.path, edgeSpecPath: install.edgeSpec.path,
                    signingKeyPath: install.signingKey.path)
                trainer.service.fleet = "loop"
                trainer.service.checkIntervalSeconds = 0.5
                trainer.service.trigger.minimumNewHardExamples = 10
                trainer.service.trigger.minimumNewLabels = 0
                trainer.service.round.fineTuneEpochs = 1
                trainer.service.trainOnShuffledLabels = true
                configuration.trainer = trainer
                let worker = try InProcessWorker(configuration)
                let recorded = await waitUntil(.seconds(150)) {
                    worker.log.contains("round: recorded") || !worker.isRunning
                }
                #expect(recorded && worker.log.contains("sample store: PostgreSQL"), "\(worker.log)")
                #expect(worker.log.contains("round: starting from edge-1 (10 new hard examples)"), "\(worker.log)")
                #expect(worker.log.contains("10 stored payloads do not decode"), "\(worker.log)")
                let round = try #require(try store.lastRound(), "the round is recorded in PostgreSQL")
                #expect(round.outcome == "gate-failed" && !round.passed, "\(round)")
                #expect(try install.store.lastRound() == nil, "not in the SQLite file of the data directory")
                #expect(try store.trainingLease() == nil, "the lease is given back")
                // Counted from the round's start, the same examples do not start another.
                try await Task.sleep(for: .seconds(1.5))
                #expect(worker.log.components(separatedBy: "round: starting").count == 2, "\(worker.log)")
                #expect(await worker.terminate() == 0, "\(worker.log)")
                try store.dropAll()
            }
        }
    }
}
