import Foundation
import TandemCore
import TandemEdge
import TandemProtocol
import TandemTestSupport
import TandemTraining
import Testing

@testable import TandemCloud

/// Deployed models and data for retraining tests: a float full model, an int8 edge model distilled from
/// it for only a few epochs (an early edge model, unsure of much), and a pool of new windows whose unsure
/// ones the edge escalates.
struct RetrainingFixture: Sendable {
    var data: DataSplit
    var full: ModelArtifact
    var edge: ModelArtifact
    var edgeSpec: ModelSpecFile
    var pool: LabeledWindows

    static let window = 64

    static let shared: Result<RetrainingFixture, any Error> = Result { try make() }

    static func make() throws -> RetrainingFixture {
        let train = SensorSimulator.windows(count: 300, window: window, seed: 11)
        let test = SensorSimulator.windows(count: 150, window: window, seed: 12)
        let pool = SensorSimulator.windows(count: 500, window: window, seed: 13)
        let standardization = Standardization.fit(train.windows)
        let input = InputSpec(
            channels: train.channels, window: window, hop: window / 2, mean: standardization.mean,
            std: standardization.std)
        var normalizedTrain = train
        input.normalize(&normalizedTrain.windows)

        let full = try smallFullModel(trainedOn: normalizedTrain, input: input)
        let fullModel = try FloatModel(artifact: full)
        let fullManifest = full.manifest

        let edgeSpec = try ModelSpecFile.parse(
            """
            name: edge
            layers:
              - {type: conv1d, filters: 8, kernel: 5, stride: 2, padding: same}
              - {type: batchnorm1d}
              - {type: relu}
              - {type: globalavgpool1d}
              - {type: dense, units: classes}
            training:
              epochs: 15
              batch_size: 16
              learning_rate: 0.005
              patience: 5
            """)
        var early = edgeSpec.training ?? TrainingConfiguration()
        early.epochs = 2
        var options = CompressionOptions(training: early, distillation: try DistillationLoss())
        options.measuresLatency = false
        var normalizedTest = test
        input.normalize(&normalizedTest.windows)
        let edge = try CompressionPipeline.run(
            teacher: fullModel, teacherManifest: fullManifest, spec: edgeSpec,
            data: CompressionData(train: normalizedTrain, test: normalizedTest), options: options, version: "edge-1"
        ).artifact
        return RetrainingFixture(
            data: DataSplit(train: train, test: test, channelNames: [], description: "simulated"), full: full,
            edge: edge, edgeSpec: edgeSpec, pool: pool)
    }

    /// Runs the edge model over the pool as the agent would and stores what it escalates (confidence below
    /// its calibration p10) with the full model's verdict; every other escalation also gets its ground truth.
    func storeEscalations(in store: SampleStore) throws -> (escalated: Int, labeled: Int) {
        var windows = pool.windows
        edge.manifest.input.normalize(&windows)
        let predictions = try Int8Engine(model: QuantizedModel(artifact: edge)).classify(windows: windows)
        guard let threshold = edge.manifest.metrics["confidence.max_probability.p10"] else {
            throw RetrainingError("the edge model has no calibration threshold")
        }
        let fullModel = try FloatModel(artifact: full)
        var escalated = 0, labeled = 0
        let size = pool.length * pool.channels
        for (i, confidence) in predictions.confidences.enumerated()
        where Double(confidence.maxProbability) < threshold {
            let id = UUID()
            let window = Array(windows.scalars[(i * size)..<((i + 1) * size)])
            let payload = EscalationPayload(
                id: id, device: "d\(i % 3)", stream: "s", modelVersion: edge.manifest.version, windowStart: 0,
                windowEnd: 1, sampleRateHz: nil, channels: pool.channels, length: pool.length, window: window,
                topK: [.init(label: confidence.label, probability: confidence.maxProbability)],
                confidence: confidence.maxProbability)
            try store.insert(
                SampleStore.Escalation(
                    id: id, device: payload.device, stream: "s", payload: try payload.encoded(), responseTopic: "t",
                    edgeLabel: confidence.label, edgeConfidence: Double(confidence.maxProbability),
                    edgeModel: edge.manifest.version, receivedAt: Double(i)))
            let probabilities = try fullModel.probabilities(
                for: pool.subset([i]).windows.normalized(full.manifest.input))
            let verdict =
                probabilities.scalars.indices.max { probabilities.scalars[$0] < probabilities.scalars[$1] } ?? 0
            try store.answer(
                [(id, .init(label: verdict, probabilities: probabilities.scalars, model: "full-1"))], at: 0)
            if escalated % 2 == 0 {
                try store.recordLabel(id: id, label: pool.labels[i])
                labeled += 1
            }
            escalated += 1
        }
        return (escalated, labeled)
    }
}

extension Tensor {
    func normalized(_ input: InputSpec) -> Tensor {
        var copy = self
        input.normalize(&copy)
        return copy
    }
}

/// A retraining round end to end on simulated data: real training, a real SQLite store, the gate.
@Suite(.timeLimit(.minutes(5)))
struct RetrainingRoundTests {
    var options: RetrainingRound.Options {
        var o = RetrainingRound.Options()
        o.fineTuneEpochs = 4
        o.edgeVersion = "edge-2"
        o.fullVersion = "full-2"
        return o
    }

    /// The accuracy and escalation rate of an int8 artifact on raw windows, computed apart from the gate.
    func score(_ artifact: ModelArtifact, on raw: LabeledWindows, threshold: Double) throws -> (Double, Double) {
        var windows = raw.windows
        artifact.manifest.input.normalize(&windows)
        let confidences = try Int8Engine(model: QuantizedModel(artifact: artifact)).classify(windows: windows)
            .confidences
        let correct = zip(confidences, raw.labels).filter { $0.label == $1 }.count
        let escalated = confidences.filter { Double($0.maxProbability) < threshold }.count
        return (Double(correct) / Double(raw.count), Double(escalated) / Double(raw.count))
    }

    @Test("a round started by hard examples yields an int8 edge model that passes the gate, with its report")
    func passes() throws {
        let fixture = try RetrainingFixture.shared.get()
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let store = try SampleStore(path: scratch.url.appendingPathComponent("tandem.sqlite").path)
        let (escalated, labeled) = try fixture.storeEscalations(in: store)
        #expect(escalated >= 20, "the early edge model is unsure of a share of new windows")

        var trigger = RetrainingTrigger()
        trigger.minimumNewHardExamples = 20
        let reasons = trigger.reasons(
            for: .init(
                now: 1e9, newHardExamples: try store.hardExampleCount(receivedAfter: -1),
                newLabels: try store.labelCount(recordedAfter: 0)))
        #expect(reasons.contains(.hardExamples(escalated)))

        let examples = try store.trainingExamples()
        #expect(examples.undecodable == 0 && examples.examples.count == escalated)
        var lines = [String]()
        let round = try RetrainingRound(
            full: fixture.full, edge: fixture.edge, edgeSpec: fixture.edgeSpec, options: options)
        let result = try round.run(data: fixture.data, hardExamples: examples.examples) { lines.append($0) }
        let gate = result.gate
        #expect(gate.passed, "\(gate.summary)")
        #expect(gate.reasons.isEmpty)
        #expect(gate.candidateAccuracy >= gate.currentAccuracy - gate.epsilon)
        #expect(gate.candidateEscalationRate < gate.currentEscalationRate)
        // About a fifth of the labelled hard examples (every fifth block of a device's consecutive ones) joins the
        // holdout and is not trained on.
        let recent = try #require(gate.recentHoldoutWindows)
        #expect(
            labeled >= 20 && recent > 0 && recent >= labeled / 10 && recent <= labeled * 3 / 10,
            "\(recent) of \(labeled)")
        #expect(gate.holdoutWindows == (fixture.data.test?.count ?? -1) + recent)
        #expect(result.hardExamplesWithGroundTruth == labeled - recent)
        #expect(gate.currentRecentAccuracy != nil && gate.candidateRecentAccuracy != nil)
        #expect(result.hardExamplesWithVerdict == escalated - labeled)
        #expect(result.phases.map(\.phase) == ["data", "fine-tune", "compress", "gate"])
        #expect(result.phases.allSatisfy { $0.seconds >= 0 })
        #expect(lines.count == 4 && lines.allSatisfy { $0.hasSuffix(" s)") }, "\(lines)")
        #expect(lines.last?.hasPrefix("gate: gate passed") == true, "\(lines.last ?? "")")

        // The report's numbers are the candidate's and the current model's, scored independently here on what
        // the gate scored: the original test windows (unchanged, first) and the recent labelled ones.
        let test = try #require(fixture.data.test)
        let holdout = result.holdout
        #expect(holdout.count == gate.holdoutWindows)
        #expect(Array(holdout.windows.scalars.prefix(test.windows.scalars.count)) == test.windows.scalars)
        let threshold = try #require(fixture.edge.manifest.metrics["confidence.max_probability.p10"])
        #expect(abs(gate.threshold - threshold) < 1e-12)
        let file = scratch.url.appendingPathComponent("edge-2.tandem")
        try result.edgeCandidate.write(to: file)
        let written = try ModelArtifact.read(from: file)
        try written.verifyGoldenOutputs(
            try Int8Engine(model: QuantizedModel(artifact: written)).logits(for: written.goldenInputs))
        // Accuracy over the whole holdout; escalation rates over the original test windows only.
        let (candidateAccuracy, _) = try score(written, on: holdout, threshold: threshold)
        let (currentAccuracy, _) = try score(fixture.edge, on: holdout, threshold: threshold)
        let (_, candidateRate) = try score(written, on: test, threshold: threshold)
        let (_, currentRate) = try score(fixture.edge, on: test, threshold: threshold)
        #expect(abs(candidateAccuracy - gate.candidateAccuracy) < 1e-12)
        #expect(abs(candidateRate - gate.candidateEscalationRate) < 1e-12)
        #expect(abs(currentAccuracy - gate.currentAccuracy) < 1e-12)
        #expect(abs(currentRate - gate.currentEscalationRate) < 1e-12)
        #expect(written.manifest.numerics == "int8" && written.manifest.version == "edge-2")
        #expect(written.manifest.parentVersion == "full-2", "the edge model descends from the fine-tuned full model")
        #expect(written.manifest.metrics["confidence.max_probability.p10"] != nil)
        #expect(result.fullCandidate.manifest.parentVersion == "full-1")
        #expect(
            abs((result.fullCandidate.manifest.metrics["holdout_accuracy"] ?? -1) - gate.candidateFullAccuracy) < 1e-12)

        try store.recordRound(
            .init(startedAt: 100, finishedAt: 200, passed: gate.passed, summary: gate.summary))
        #expect(try store.lastRound()?.passed == true)
    }

    @Test("an edge model trained on shuffled labels is stopped by the gate, for its accuracy")
    func stopsWorseCandidate() throws {
        let fixture = try RetrainingFixture.shared.get()
        var data = fixture.data
        var generator = SeededGenerator(seed: 99)
        generator.shuffle(&data.train.labels)
        var o = options
        o.alpha = 1  // hard labels only, so the student learns the shuffled labels and nothing from its teacher
        let round = try RetrainingRound(full: fixture.full, edge: fixture.edge, edgeSpec: fixture.edgeSpec, options: o)
        let result = try round.run(data: data, hardExamples: [])
        let gate = result.gate
        #expect(!gate.passed, "\(gate.summary)")
        #expect(gate.candidateAccuracy < gate.currentAccuracy - gate.epsilon)
        #expect(gate.reasons.first?.contains("accuracy") == true, "\(gate.reasons)")
        #expect(gate.summary.hasPrefix("gate failed: accuracy"))
    }

    @Test(
        "hard examples labelled by a stale verdict are labelled again by the fine-tuned full model before distillation"
    )
    func verdictLabelsAreRenewed() throws {
        let fixture = try RetrainingFixture.shared.get()
        let model = try FloatModel(artifact: fixture.full)
        // More windows than one batch of the relabelling, every label wrong for this model (the next class).
        var set = fixture.pool.subset(Array(0..<300))
        fixture.full.manifest.input.normalize(&set.windows)
        let predicted = try model.logits(for: set.windows).argmaxRows()
        set.labels = predicted.map { ($0 + 1) % set.classNames.count }
        let (relabeled, changed) = try RetrainingRound.relabel(set, by: model)
        #expect(relabeled.labels == predicted && changed == 300)
        #expect(relabeled.windows == set.windows && relabeled.classNames == set.classNames)
        let (again, unchanged) = try RetrainingRound.relabel(relabeled, by: model)
        #expect(again.labels == predicted && unchanged == 0)
    }

    @Test("past the hard-example limit a round keeps the newest with ground truth, then the newest verdicts, in order")
    func newestKeepsGroundTruth() {
        // 10 examples, oldest first; 2, 5 and 8 have ground truth.
        let examples = (0..<10).map { i in
            SampleStore.TrainingExample(
                id: UUID(), device: "d", edgeModel: "e", receivedAt: Double(i), channels: 1, length: 1, window: [0],
                label: 0, source: [2, 5, 8].contains(i) ? .groundTruth : .verdict)
        }
        func times(_ limit: Int) -> [Double] { RetrainingRound.newest(examples, limit: limit).map(\.receivedAt) }
        #expect(times(5) == [2, 5, 7, 8, 9])
        #expect(times(2) == [5, 8])
        #expect(times(3) == [2, 5, 8])
        #expect(times(0) == [])
        #expect(times(10) == (0..<10).map(Double.init) && times(50).count == 10)
    }

    @Test("the gate wants fewer escalations, or at most the slack more from a candidate ahead on the recent windows")
    func escalationSlack() {
        func refusal(_ candidate: Double, _ current: Double, recent: (Double, Double)?) -> String? {
            RetrainingRound.escalationRefusal(
                candidate: candidate, current: current, candidateRecent: recent?.0, currentRecent: recent?.1,
                epsilon: 0.01, slack: 0.03)
        }
        #expect(refusal(0.02, 0.03, recent: nil) == nil)
        #expect(refusal(0, 0, recent: nil) == nil)
        #expect(refusal(0.03, 0.03, recent: nil)?.contains("not below") == true)
        // Ahead on the recent labelled windows by more than epsilon: up to 3 pp more is accepted.
        #expect(refusal(0.0577, 0.0321, recent: (0.9759, 0.9357)) == nil)
        #expect(refusal(0.0615, 0.0321, recent: (0.9759, 0.9357)) == nil)
        #expect(refusal(0.0625, 0.0321, recent: (0.9759, 0.9357))?.contains("more than 3.00% above") == true)
        // Not ahead by more than epsilon: strictly fewer again.
        #expect(refusal(0.04, 0.0321, recent: (0.94, 0.9357))?.contains("not below") == true)
    }

    @Test("inputs that do not fit are refused before any training")
    func refusesMismatches() throws {
        let fixture = try RetrainingFixture.shared.get()
        #expect(throws: RetrainingError.self) {
            try RetrainingRound(full: fixture.edge, edge: fixture.edge, edgeSpec: fixture.edgeSpec)
        }
        let short = SensorSimulator.windows(count: 20, window: 32, seed: 1)
        let round = try RetrainingRound(full: fixture.full, edge: fixture.edge, edgeSpec: fixture.edgeSpec)
        #expect(throws: RetrainingError.self) {
            try round.run(
                data: DataSplit(train: short, test: nil, channelNames: [], description: "short"), hardExamples: [])
        }
    }
}
