import Crypto
import Foundation
import Synchronization
import TandemCloud
import TandemCore
import TandemFleet
import TandemFleetTestSupport
import TandemMQTT
import TandemProtocol
import TandemTestSupport
import TandemTraining
import Testing

/// The cloud's own model learning: a full version the trainer promotes in the full-model registry is swapped into
/// every worker of the data directory between batches, and a worse one is rolled back on label accuracy.
@Suite(.serialized, .timeLimit(.minutes(4)))
struct FullModelSwapTests {
    /// A second full model for the same windows and classes as `fullModelArtifact()`, with other weights.
    static func newerFullModel(version: String = "full-2", seed: UInt64 = 9) throws -> ModelArtifact {
        try flattenDenseArtifact(
            name: "full-test", version: version, seed: seed, window: 8, channels: 3, classes: 3, mean: 0, std: 1,
            classPrefix: "c")
    }

    /// Registers `artifact` in the full-model registry of `dataDirectory` (signed with `key`) and makes it production.
    static func promote(
        _ artifact: ModelArtifact, in dataDirectory: String, key: Curve25519.Signing.PrivateKey, force: Bool = false
    ) throws {
        let registry = try ModelRegistry(directory: ModelRegistry.fullModelsDirectory(in: dataDirectory))
        let incoming = URL(fileURLWithPath: dataDirectory).appendingPathComponent("\(artifact.manifest.version).tandem")
        try artifact.write(to: incoming)
        try registry.register(
            artifactAt: incoming, signingKey: key, lineage: ModelLineage(source: "retrain"), force: force)
        try registry.setProduction(artifact.manifest.version)
    }

    @Test("a version that failed to load is named once and tried again after the retry interval, then served")
    func retryAfterFailedLoad() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let data = "\(scratch.url.path)/data"
        let initial = try fullModelArtifact()
        let model = try FloatModel(artifact: initial)
        let registry = try ModelRegistry(directory: ModelRegistry.fullModelsDirectory(in: data))
        let serving = ServingModel(
            initial: .init(classifier: BatchClassifier(engine: .float(model), threads: 2), manifest: initial.manifest),
            registry: registry, trustedKeyPaths: [],
            retrySeconds: 0.5)
        #expect(serving.refresh() == .none, "no production version yet")
        try Self.promote(try Self.newerFullModel(), in: data, key: Curve25519.Signing.PrivateKey())
        // The artifact on disk is cut short (a copy not finished): refused once, not tried again at once.
        let url = registry.artifactURL(version: "full-2")
        let bytes = try Data(contentsOf: url)
        try bytes.prefix(bytes.count / 2).write(to: url)
        guard case .refused(version: "full-2", _) = serving.refresh() else {
            Issue.record("a truncated artifact was not refused")
            return
        }
        #expect(serving.refresh() == .none)
        #expect(serving.current.manifest.version == initial.manifest.version)
        // Whole again: after the interval it loads and answers.
        try bytes.write(to: url)
        #expect(serving.refresh() == .none, "still within the retry interval")
        Thread.sleep(forTimeInterval: 0.6)
        #expect(serving.refresh() == .swapped(from: initial.manifest.version, to: "full-2"))
        #expect(serving.current.manifest.version == "full-2")
    }

    @Test(
        "two workers swap to a promoted full version between batches while escalations stream: none lost or unanswered, later verdicts carry the new version and its answers; an unusable version is refused and serving goes on"
    )
    func swapUnderLoad() async throws {
        try await MosquittoBroker.with { broker in
            let scratch = try ScratchDirectory()
            defer { scratch.remove() }
            let directory = scratch.url.path
            try fullModelArtifact().write(to: URL(fileURLWithPath: "\(directory)/full.tandem"))
            var workers: [InProcessWorker] = []
            for id in ["1", "2"] {
                var configuration = try InProcessWorker.configuration(
                    brokerPort: broker.port, modelPath: "\(directory)/full.tandem", dataDirectory: "\(directory)/data",
                    workerID: id)
                configuration.http = nil
                configuration.fullModelCheckSeconds = 0.2
                workers.append(try InProcessWorker(configuration))
            }
            #expect(
                await waitUntil(startLimit) { workers.allSatisfy { $0.log.contains("serving") } },
                "\(workers.map(\.log))")
            let observer = try await deviceClient(broker, "observer")
            let verdicts = Mutex<[UUID: [Verdict]]>([:])
            let subscription = try await observer.subscribe(to: "tandem/v1/f/+/verdicts", qos: .atLeastOnce) {
                message in
                if let verdict = try? Verdict(decoding: message.payload) {
                    verdicts.withLock { $0[verdict.escalationId, default: []].append(verdict) }
                }
            }
            let device = try await deviceClient(broker, "d1")
            var generator = SeededGenerator(seed: 17)
            var sent: [(id: UUID, window: [Float])] = []
            func send(_ count: Int) async throws {
                for _ in 0..<count {
                    let id = UUID()
                    let window = (0..<24).map { _ in generator.nextGaussian() }
                    let payload = try EscalationPayload(
                        id: id, device: "d1", stream: "vib", modelVersion: "edge-1", windowStart: 0, windowEnd: 0.07,
                        sampleRateHz: 100, channels: 3, length: 8, window: window,
                        topK: [.init(label: 0, probability: 0.5)], confidence: 0.5
                    ).encoded()
                    try await device.publish(
                        MQTTMessage(topic: "tandem/v1/f/d1/escalations", payload: payload, qos: .atLeastOnce))
                    sent.append((id, window))
                    try await Task.sleep(for: .milliseconds(4))
                }
            }
            // Before, during and after the swap: the promotion lands while escalations are in flight.
            try await send(150)
            let key = Curve25519.Signing.PrivateKey()
            try Self.promote(try Self.newerFullModel(), in: "\(directory)/data", key: key)
            try await send(150)
            let swapped = await waitUntil {
                workers.allSatisfy { $0.log.contains("full model: now answering with full-2 (was full-1)") }
            }
            #expect(swapped, "\(workers.map(\.log))")
            let afterSwap = sent.count
            try await send(100)
            let all = Set(sent.map(\.id))
            #expect(
                await waitUntil { verdicts.withLock { Set($0.keys) } == all },
                "\(all.count - verdicts.withLock { $0.count }) escalations without a verdict")
            // A row is marked answered once the broker acknowledged its verdict, which may come after the
            // observer received it.
            let store = try SampleStore(path: "\(directory)/data/tandem.sqlite")
            _ = await waitUntil { (try? store.counts().answered) == sent.count }
            let counts = try store.counts()
            #expect(counts.rows == sent.count && counts.answered == sent.count, "\(counts)")
            // Verdicts of escalations sent after both workers swapped are full-2's, and are full-2's answers.
            let newer = try FloatModel(artifact: Self.newerFullModel())
            let older = try FloatModel(artifact: fullModelArtifact())
            var differing = 0
            let received = verdicts.withLock { $0 }
            for (id, window) in sent[afterSwap...] {
                let verdict = try #require(received[id]?.first)
                #expect(verdict.modelVersion == "full-2", "\(verdict)")
                let input = Tensor(shape: [1, 8, 3], scalars: window)
                let expected = try newer.logits(for: input).argmaxRows()[0]
                #expect(verdict.label == expected)
                if try older.logits(for: input).argmaxRows()[0] != expected { differing += 1 }
            }
            #expect(differing > 5, "the two models answer differently often enough for the check to mean something")
            // Every verdict is one of the two versions; the earliest are full-1's.
            let versions = Set(received.values.flatMap { $0.map(\.modelVersion) })
            #expect(versions == ["full-1", "full-2"], "\(versions)")
            #expect(received[sent[0].id]?.first?.modelVersion == "full-1")

            // A production version of another shape is refused, named once, and full-2 keeps answering.
            try Self.promote(
                try flattenDenseArtifact(
                    name: "full-test", version: "full-9", seed: 4, window: 9, channels: 3, classes: 3, mean: 0,
                    std: 1, classPrefix: "c"), in: "\(directory)/data", key: key, force: true)
            #expect(
                await waitUntil { workers.allSatisfy { $0.log.contains("production version full-9 not used") } },
                "\(workers.map(\.log))")
            try await Task.sleep(for: .seconds(1))
            #expect(workers.allSatisfy { occurrences(of: "production version full-9 not used", in: $0.log) == 1 })
            let lateStart = sent.count
            try await send(20)
            let late = Set(sent[lateStart...].map(\.id))
            #expect(await waitUntil { late.isSubset(of: Set(verdicts.withLock { $0.keys })) })
            #expect(late.allSatisfy { id in verdicts.withLock { $0[id]?.first?.modelVersion } == "full-2" })

            subscription.cancel()
            await observer.disconnect()
            await device.disconnect()
            for worker in workers { #expect(await worker.terminate() == 0, "\(worker.log)") }
        }
    }
}

/// A promoted full model on trial is judged on the labelled escalations it answered, and rolled back when it does
/// worse than the version it replaced on the same windows.
@Suite(.serialized, .timeLimit(.minutes(4)))
struct FullModelRollbackTests {
    /// `full` with its classes rotated at the output (class k answered as k + 1): confidently wrong.
    static func rotatedClasses(of full: ModelArtifact, version: String) throws -> ModelArtifact {
        let network = try Network(model: try FloatModel(artifact: full), seed: 1)
        var state = network.state()
        let classes = full.manifest.classNames.count
        let output = try #require(
            state.keys.filter { $0.hasSuffix(".weight") && state[$0]?.shape.first == classes && state[$0]?.rank == 2 }
                .max { (Int($0.split(separator: ".")[0]) ?? 0) < (Int($1.split(separator: ".")[0]) ?? 0) })
        let prefix = output.dropLast(".weight".count)
        for name in [output, "\(prefix).bias"] {
            let tensor = try #require(state[name])
            let width = tensor.count / classes
            var rotated = tensor
            for k in 0..<classes {
                let from = (k + classes - 1) % classes
                for j in 0..<width { rotated.scalars[k * width + j] = tensor.scalars[from * width + j] }
            }
            state[name] = rotated
        }
        network.restore(state)
        let model = try network.exportFloatModel()
        var manifest = full.manifest
        manifest.version = version
        manifest.parentVersion = full.manifest.version
        return try ModelArtifact(model: model, manifest: manifest, goldenInputs: full.goldenInputs)
    }

    @Test("the trial's label accuracies pool the devices: one device's labels by the hundred cannot roll a model back")
    func trialPoolsDevices() throws {
        // A loud device labels 300 windows as the previous model answers them (the promoted one wrong on each);
        // four others label 10 each, where the promoted model is right and the previous one wrong.
        var devices = [String](repeating: "loud", count: 300)
        var labels = [Int](repeating: 1, count: 300)
        var promoted = [Int](repeating: 0, count: 300)
        var previous = [Int](repeating: 1, count: 300)
        for device in ["a", "b", "c", "d"] {
            devices += [String](repeating: device, count: 10)
            labels += [Int](repeating: 2, count: 10)
            promoted += [Int](repeating: 2, count: 10)
            previous += [Int](repeating: 0, count: 10)
        }
        // Summed, the promoted model scores 40 of 340 (11.8 %) against 300 of 340; pooled, the loud device counts
        // as 10 windows: 40 of 50 against 10 of 50.
        let comparison = try #require(
            FullModelComparison(devices: devices, labels: labels, promoted: promoted, previous: previous))
        #expect(comparison == FullModelComparison(windows: 50, accuracy: 0.8, previousAccuracy: 0.2))
        // The count the trial waits for, known before either model runs.
        #expect(FullModelComparison.pooledWindows(devices: devices) == 50)
        #expect(FullModelComparison.pooledWindows(devices: ["x", "x", "x", "y"]) == 2, "x counts as y's one window")
        // One device alone is its own median: its windows count in full.
        let alone = try #require(
            FullModelComparison(
                devices: ["x", "x", "x", "x"], labels: [0, 1, 2, 0], promoted: [0, 1, 0, 0], previous: [0, 0, 0, 0]))
        #expect(alone == FullModelComparison(windows: 4, accuracy: 0.75, previousAccuracy: 0.5))
        #expect(FullModelComparison(devices: [], labels: [], promoted: [], previous: []) == nil)
    }

    @Test(
        "a promoted full model that labels show to be worse than the one it replaced is rolled back, and the workers answer with the previous one again"
    )
    func worseFullModelRolledBack() async throws {
        let fixture = try LoopFixture.shared.get()
        try await fixture.withBroker { broker, install, scratch in
            let key = try SigningKeyFile.readPrivateKey(from: install.signingKey)
            let data = install.dataDirectory.path
            let fullModels = try ModelRegistry(directory: ModelRegistry.fullModelsDirectory(in: data))
            for (artifact, source) in [
                (fixture.full, "initial"), (try Self.rotatedClasses(of: fixture.full, version: "full-bad"), "retrain"),
            ] {
                let incoming = scratch.url.appendingPathComponent("\(artifact.manifest.version).tandem")
                try artifact.write(to: incoming)
                try fullModels.register(artifactAt: incoming, signingKey: key, lineage: ModelLineage(source: source))
            }
            try fullModels.setProduction("full-bad")
            let since = Date().timeIntervalSince1970 - 1
            try Data(#"{"previous":"full-1","since":\#(since),"version":"full-bad"}"#.utf8).write(
                to: fullModels.directory.appendingPathComponent("trial.json"))

            var configuration = try InProcessWorker.configuration(
                brokerPort: broker.port, modelPath: install.fullModel.path, dataDirectory: data, workerID: "1")
            configuration.http = nil
            configuration.fullModelCheckSeconds = 0.2
            var trainer = CloudWorker.Trainer(
                trainingDataPath: install.trainingData.path, edgeSpecPath: install.edgeSpec.path,
                signingKeyPath: install.signingKey.path)
            trainer.service.fleet = "loop"
            trainer.service.checkIntervalSeconds = 0.5
            // No round: only the trial is judged.
            trainer.service.trigger.minimumNewHardExamples = 0
            trainer.service.trigger.minimumNewLabels = 0
            trainer.service.trigger.minimumDriftWindows = 0
            trainer.service.fullMinimumLabelledWindows = 30
            configuration.trainer = trainer
            let worker = try InProcessWorker(configuration)
            #expect(
                await waitUntil { worker.log.contains("full model: now answering with full-bad (was full-1)") },
                "\(worker.log)")

            let windows = try DataSource.load(path: install.trainingData.path, window: 64, hop: 32)
            let test = try #require(windows.test)
            let edgeInput = fixture.edge.manifest.input
            let observer = try await deviceClient(broker, "observer")
            let verdicts = Mutex<[UUID: Verdict]>([:])
            let subscription = try await observer.subscribe(to: "tandem/v1/loop/+/verdicts", qos: .atLeastOnce) {
                message in
                if let verdict = try? Verdict(decoding: message.payload) {
                    verdicts.withLock { $0[verdict.escalationId] = verdict }
                }
            }
            let device = try await deviceClient(broker, "press-1")
            let size = 64 * test.channels
            func escalate(_ indices: Range<Int>) async throws -> [(UUID, Int)] {
                var sent: [(UUID, Int)] = []
                for i in indices {
                    var window = Array(test.windows.scalars[(i * size)..<((i + 1) * size)])
                    for k in window.indices {
                        let c = k % test.channels
                        window[k] = (window[k] - edgeInput.mean[c]) / edgeInput.std[c]
                    }
                    let id = UUID()
                    let payload = try EscalationPayload(
                        id: id, device: "press-1", stream: "vib", modelVersion: "edge-1", windowStart: 0,
                        windowEnd: 1, sampleRateHz: nil, channels: test.channels, length: 64, window: window,
                        topK: [.init(label: 0, probability: 0.4)], confidence: 0.4
                    ).encoded()
                    try await device.publish(
                        MQTTMessage(topic: "tandem/v1/loop/press-1/escalations", payload: payload, qos: .atLeastOnce))
                    sent.append((id, i))
                }
                return sent
            }
            let count = min(40, test.count - 10)
            let first = try await escalate(0..<count)
            #expect(await waitUntil { verdicts.withLock { $0.count } >= count }, "\(worker.log)")
            #expect(first.allSatisfy { sent in verdicts.withLock { $0[sent.0]?.modelVersion } == "full-bad" })
            #expect(!worker.log.contains("rolled back"), "no verdict on the trial before the labels arrive")
            for (id, i) in first {
                try await device.publish(
                    MQTTMessage(
                        topic: "tandem/v1/loop/press-1/labels",
                        payload: GroundTruthLabel(escalationId: id, label: test.classNames[test.labels[i]]).encoded(),
                        qos: .atLeastOnce))
            }
            #expect(
                await waitUntil(.seconds(30)) { worker.log.contains("full model: full-bad rolled back to full-1") },
                "\(worker.log)")
            #expect(try fullModels.productionVersion() == "full-1")
            #expect(
                !FileManager.default.fileExists(atPath: fullModels.directory.appendingPathComponent("trial.json").path))
            let audit = try String(
                contentsOf: install.dataDirectory.appendingPathComponent("audit.jsonl"), encoding: .utf8)
            #expect(audit.contains("rollback-full"), "\(audit)")
            #expect(
                await waitUntil { worker.log.contains("full model: now answering with full-1 (was full-bad)") },
                "\(worker.log)")
            let later = try await escalate(count..<(count + 5))
            #expect(await waitUntil { later.allSatisfy { id, _ in verdicts.withLock { $0[id] } != nil } })
            #expect(later.allSatisfy { sent in verdicts.withLock { $0[sent.0]?.modelVersion } == "full-1" })

            subscription.cancel()
            await observer.disconnect()
            await device.disconnect()
            #expect(await worker.terminate() == 0, "\(worker.log)")
        }
    }
}
