import Foundation
import TandemCore
import TandemTraining

/// A retraining round that cannot run: inputs that do not fit together.
public struct RetrainingError: Error, CustomStringConvertible, Sendable {
    /// What went wrong.
    public var message: String

    /// Creates an error.
    public init(_ message: String) { self.message = message }

    /// The message.
    public var description: String { message }
}

/// A round given up between phases because its caller asked it to stop (shutdown, or a lost lease).
public struct RetrainingStopped: Error, CustomStringConvertible, Sendable {
    /// The phase that would have run next.
    public var beforePhase: String

    /// "stopped before {phase}".
    public var description: String { "stopped before \(beforePhase)" }
}

/// One round of the retraining loop: fine-tune the full model on a replay sample of the original data plus the
/// labeled hard examples, distil, prune and quantize a new edge model from it, and check both candidates against
/// the current models on held-out windows.
///
/// The round is bounded so that it finishes while a drift still matters: the full model is fine-tuned from its
/// current weights (never trained afresh), on the hard examples plus at most ``Options/replayWindows`` original
/// windows (a stratified random sample, so it does not forget the rest), and each training phase has a time budget
/// (``Options/fineTuneSeconds``, ``Options/compressSeconds``) at which it stops and keeps the best weights it had.
///
/// The round neither signs nor publishes: its result is candidate artifacts and a gate report for the
/// registry to act on. It runs on the calling thread.
public struct RetrainingRound: Sendable {
    /// Settings of a round. The defaults are meant for data nobody has tuned for: short fine-tuning at a
    /// low learning rate with early stopping, the edge spec's own distillation settings, a one-point gate.
    public struct Options: Sendable {
        /// Upper bound on epochs fine-tuning the full model (early stopping usually ends sooner). Default 10.
        public var fineTuneEpochs = 10
        /// Learning rate of the full model's fine-tuning: a tenth of the usual Adam rate, so the model
        /// moves towards the hard examples without forgetting the rest. Default 1e-4.
        public var fineTuneLearningRate: Float = 1e-4
        /// Epochs without validation improvement before fine-tuning stops. Default 3.
        public var fineTunePatience = 3
        /// Upper bound on distillation epochs for the edge model; nil uses the edge spec's. Default nil.
        public var distillationEpochs: Int?
        /// Distillation temperature T. Default 4.
        public var temperature: Float = 4
        /// Weight α of the hard-label loss in distillation (1 − α goes to the teacher's soft targets). Default 0.5.
        public var alpha: Float = 0.5
        /// Pruning of the new edge model, if any. Default none.
        public var pruning: PruningTarget?
        /// Upper bound on fine-tuning epochs after pruning. Default 10.
        public var prunedFineTuneEpochs = 10
        /// The gate accepts a candidate whose holdout accuracy is at most this much below the current edge
        /// model's. Default 0.01.
        public var epsilon = 0.01
        /// Confidence threshold (max probability) the escalation rates are measured at; nil uses the current
        /// edge model's calibration `confidence.max_probability.p10`. Default nil.
        public var threshold: Double?
        /// Share of the original training windows held out for the gate when the data set has no test part.
        /// Default 0.2.
        public var holdoutFraction: Float = 0.2
        /// Seed for splits, initialization and shuffling. Default 42.
        public var seed: UInt64 = 42
        /// Version of the candidate edge model; nil makes `{spec name}-r{UTC time}`.
        public var edgeVersion: String?
        /// Version of the candidate full model; nil makes `{full name}-r{UTC time}`.
        public var fullVersion: String?
        /// Seconds the full model's fine-tuning may take; at the end of the batch under way it stops and keeps the
        /// best weights of the epochs it ran (the warm start itself is not among them: the full-model gate is what
        /// compares the result with the current model). nil: no budget. Default 30.
        public var fineTuneSeconds: Double? = 30
        /// Seconds distillation (and the fine-tuning after pruning) may take, the same way; quantizing and scoring
        /// run after it. nil: no budget. Default 30.
        public var compressSeconds: Double? = 30
        /// Most original training windows a round trains on besides the hard examples: a stratified random sample
        /// drawn afresh each round (seeded). nil: all of them. Default 2,000.
        public var replayWindows: Int? = 2000
        /// Most hard examples a round uses: the newest with ground truth, then the newest labelled by a verdict to
        /// fill the rest; nil: all. Default 5,000.
        public var hardExampleLimit: Int? = 5000
        /// How much more a candidate may escalate on the original test windows than the current edge model when it is
        /// more accurate (by more than ``epsilon``) on the recent labelled windows: after a drift the fleet no longer
        /// sees the original windows, and the canary judges its escalation rate on what the fleet sees now. Without
        /// that lead it must escalate less. Default 0.03.
        public var escalationSlack = 0.03

        /// The defaults.
        public init() {}
    }

    /// How the candidate edge model compared with the current one on the holdout.
    public struct GateReport: Sendable, Equatable, Codable {
        /// Holdout windows scored.
        public var holdoutWindows: Int
        /// The current edge model's accuracy.
        public var currentAccuracy: Double
        /// The candidate edge model's accuracy.
        public var candidateAccuracy: Double
        /// The current full model's accuracy (not gated; for the record).
        public var currentFullAccuracy: Double
        /// The fine-tuned full model's accuracy (not gated; for the record).
        public var candidateFullAccuracy: Double
        /// The threshold both escalation rates are measured at.
        public var threshold: Double
        /// Share of the original test windows of the holdout the current edge model would escalate.
        public var currentEscalationRate: Double
        /// Share of the original test windows of the holdout the candidate would escalate.
        public var candidateEscalationRate: Double
        /// The accuracy tolerance.
        public var epsilon: Double
        /// Of `holdoutWindows`, the labelled hard examples held out of training (blocks spread over the whole time):
        /// what the fleet sees now, next to the original test windows (accuracy counts both; escalation rates only
        /// the original ones).
        /// Nil in reports written before it was recorded.
        public var recentHoldoutWindows: Int?
        /// The current edge model's accuracy on those recent windows.
        public var currentRecentAccuracy: Double?
        /// The candidate's accuracy on those recent windows.
        public var candidateRecentAccuracy: Double?
        /// Whether the candidate may be rolled out.
        public var passed: Bool
        /// Why it failed, one entry per failed condition; empty when it passed.
        public var reasons: [String]
        /// The current full model's accuracy on the recent labelled windows, if there were any.
        public var currentFullRecentAccuracy: Double?
        /// The fine-tuned full model's accuracy on them.
        public var candidateFullRecentAccuracy: Double?
        /// Whether the fine-tuned full model may replace the current one in the workers: its holdout accuracy at
        /// most ε below the current full model's, on all holdout windows and on the recent labelled ones. Nil in
        /// reports written before the full model was gated.
        public var fullPassed: Bool?
        /// Why the full model failed its gate; empty when it passed.
        public var fullReasons: [String]?

        /// One line: the verdict with both accuracies and escalation rates.
        public var summary: String {
            var numbers =
                "accuracy \(Self.percent(candidateAccuracy)) vs \(Self.percent(currentAccuracy)), escalation rate \(Self.percent(candidateEscalationRate)) vs \(Self.percent(currentEscalationRate)) at max-prob < \(String(format: "%.3f", threshold)) on \(holdoutWindows) holdout windows"
            if let recent = recentHoldoutWindows, recent > 0, let candidate = candidateRecentAccuracy,
                let current = currentRecentAccuracy
            {
                numbers +=
                    "; on the \(recent) recent labelled ones \(Self.percent(candidate)) vs \(Self.percent(current))"
            }
            return passed ? "gate passed: \(numbers)" : "gate failed: \(reasons.joined(separator: "; ")) (\(numbers))"
        }

        /// One line about the full model's gate.
        public var fullSummary: String {
            var numbers = "accuracy \(Self.percent(candidateFullAccuracy)) vs \(Self.percent(currentFullAccuracy))"
            if let candidate = candidateFullRecentAccuracy, let current = currentFullRecentAccuracy {
                numbers += ", on the recent labelled ones \(Self.percent(candidate)) vs \(Self.percent(current))"
            }
            return fullPassed == true
                ? "full-model gate passed: \(numbers)"
                : "full-model gate failed: \((fullReasons ?? []).joined(separator: "; ")) (\(numbers))"
        }

        static func percent(_ x: Double) -> String { String(format: "%.2f%%", x * 100) }
    }

    /// How long one phase took.
    public struct PhaseTiming: Sendable, Equatable {
        /// `data`, `fine-tune`, `compress` or `gate`.
        public var phase: String
        /// Wall-clock seconds.
        public var seconds: Double
    }

    /// What a round produced.
    public struct Result: Sendable {
        /// The fine-tuned full model (float, unsigned).
        public var fullCandidate: ModelArtifact
        /// The new int8 edge model (unsigned), with calibration metrics in its manifest.
        public var edgeCandidate: ModelArtifact
        /// The compression pipeline's comparison rows (on the holdout).
        public var compression: CompressionResult
        /// The gate's verdict.
        public var gate: GateReport
        /// Hard examples used: with ground truth, and with the verdict as teacher label.
        public var hardExamplesWithGroundTruth: Int
        /// Hard examples whose label is the cloud verdict.
        public var hardExamplesWithVerdict: Int
        /// Hard examples skipped (another window shape, a class the model does not have).
        public var hardExamplesSkipped: Int
        /// Phase timings, in order.
        public var phases: [PhaseTiming]
        /// The windows the gate scored, raw: the original test windows, then the held-out labelled hard examples.
        public var holdout: LabeledWindows
        /// Whether the fine-tuning ended at its time budget.
        public var fineTuneOutOfTime = false
        /// Whether distillation ended at its time budget.
        public var compressOutOfTime = false
    }

    /// The current full (float) model.
    public var full: ModelArtifact
    /// The current edge (int8) model.
    public var edge: ModelArtifact
    /// The edge model's spec (layers, name, distillation settings).
    public var edgeSpec: ModelSpecFile
    /// The settings.
    public var options: Options
    /// Input specs of earlier edge model versions, so their hard examples are brought from their own
    /// standardization to the full model's; versions not listed (other than `edge`) are taken to share the
    /// full model's.
    public var edgeInputs: [String: InputSpec] = [:]

    /// A round from the deployed models.
    ///
    /// - Throws: `RetrainingError` when the full model is not float, the edge model not int8, or their
    ///   classes differ.
    public init(full: ModelArtifact, edge: ModelArtifact, edgeSpec: ModelSpecFile, options: Options = Options())
        throws
    {
        guard full.manifest.numerics == "float32" else {
            throw RetrainingError("full model \(full.manifest.version) is \(full.manifest.numerics), not float32")
        }
        guard edge.manifest.numerics == QuantizedModel.numerics else {
            throw RetrainingError("edge model \(edge.manifest.version) is \(edge.manifest.numerics), not int8")
        }
        guard full.manifest.classNames == edge.manifest.classNames else {
            throw RetrainingError(
                "classes differ: full model \(full.manifest.classNames), edge model \(edge.manifest.classNames)")
        }
        self.full = full
        self.edge = edge
        self.edgeSpec = edgeSpec
        self.options = options
    }

    /// Runs the round.
    ///
    /// - Parameters:
    ///   - data: the original training data (raw, as `DataSource.load` reads it); its test part, or a
    ///     stratified share of its training part, is the gate's holdout and is never trained on.
    ///   - hardExamples: the store's hard examples (`SampleStore.trainingExamples`).
    ///   - progress: one line per phase with its timing.
    ///   - shouldStop: asked before each phase; true ends the round with ``RetrainingStopped``.
    /// - Throws: `RetrainingError` for data that does not fit the models; ``RetrainingStopped``; training and
    ///   quantization errors.
    public func run(
        data: DataSplit, hardExamples: [SampleStore.TrainingExample], progress: (String) -> Void = { _ in },
        shouldStop: () -> Bool = { false }
    ) throws -> Result {
        let fullManifest = full.manifest
        let input = fullManifest.input
        var phases = [PhaseTiming]()
        func phase<T>(_ name: String, _ body: () throws -> (T, String)) throws -> T {
            if shouldStop() { throw RetrainingStopped(beforePhase: name) }
            let start = ContinuousClock.now
            let (value, line) = try body()
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            phases.append(PhaseTiming(phase: name, seconds: seconds))
            progress("\(name): \(line) (\(String(format: "%.1f", seconds)) s)")
            return value
        }

        // Data: the original split in the full model's class order, the holdout kept raw so each model
        // can standardize it its own way, and the hard examples brought into the full model's standardization.
        let prepared = try phase("data") { () throws -> (PreparedData, String) in
            let limited = options.hardExampleLimit.map { Self.newest(hardExamples, limit: max(0, $0)) } ?? hardExamples
            let prepared = try prepare(data: data, hardExamples: limited)
            return (
                prepared,
                "\(prepared.train.count) of \(prepared.originalTrainingWindows) original training windows replayed, \(prepared.holdout.count) holdout windows (\(prepared.recentHoldout) of them labelled hard examples), \(prepared.groundTruth.count) hard examples with ground truth, \(prepared.verdictLabeled.count) with the verdict as label, \(prepared.skipped) skipped\(hardExamples.count > limited.count ? ", \(hardExamples.count - limited.count) older ones left out" : "")"
            )
        }

        // Fine-tune the full model on the original windows plus the hard examples with ground truth.
        let currentFull = try FloatModel(artifact: full)
        var holdoutForFull = prepared.holdout
        input.normalize(&holdoutForFull.windows)
        var fineTuneOutOfTime = false
        let (fullCandidate, fullModel) = try phase("fine-tune") { () throws -> ((ModelArtifact, FloatModel), String) in
            // Warm start: the current weights, batch norm folded.
            let network = try Network(model: currentFull, seed: options.seed)
            var config = TrainingConfiguration()
            config.epochs = options.fineTuneEpochs
            config.minimumSteps = 0
            config.learningRate = options.fineTuneLearningRate
            config.patience = options.fineTunePatience
            config.seed = options.seed
            let trainingSet = Self.concatenate(prepared.train, prepared.groundTruth)
            let result = try Trainer(configuration: config).train(
                network, on: trainingSet, until: Self.deadline(options.fineTuneSeconds))
            fineTuneOutOfTime = result.stoppedAtDeadline
            let model = try network.exportFloatModel()
            let accuracy = try Self.accuracy(model.logits(for: holdoutForFull.windows).argmaxRows(), holdoutForFull)
            let version = options.fullVersion ?? Self.version(fullManifest.name)
            var metrics = ["holdout_accuracy": accuracy]
            if let v = result.validation { metrics["validation_accuracy"] = v.accuracy }
            let manifest = ModelManifest(
                name: fullManifest.name, version: version, parentVersion: fullManifest.version,
                createdAt: ISO8601DateFormatter().string(from: Date()), architecture: model.architecture,
                input: input, classNames: fullManifest.classNames,
                trainingDataDigest: fullManifest.trainingDataDigest, metrics: metrics)
            let artifact = try ModelArtifact(
                model: model, manifest: manifest,
                goldenInputs: holdoutForFull.windows.slice(0..<min(8, holdoutForFull.count)))
            return (
                (artifact, model),
                "\(trainingSet.count) windows, kept epoch \(result.bestEpoch) of \(result.epochsRun)\(result.stoppedEarly ? " (stopped early)" : "")\(result.stoppedAtDeadline ? " (time budget of \(Self.seconds(options.fineTuneSeconds)) reached)" : ""), holdout accuracy \(GateReport.percent(accuracy))"
            )
        }

        // Distil, prune and quantize a new edge model from the fine-tuned full model.
        var compressOutOfTime = false
        let compression = try phase("compress") { () throws -> (CompressionResult, String) in
            var config = edgeSpec.training ?? TrainingConfiguration()
            if let epochs = options.distillationEpochs { config.epochs = epochs }
            config.seed = options.seed
            var compressionOptions = CompressionOptions(
                training: config,
                distillation: try DistillationLoss(temperature: options.temperature, alpha: options.alpha))
            compressionOptions.pruning = options.pruning
            compressionOptions.fineTuneEpochs = options.prunedFineTuneEpochs
            compressionOptions.measuresLatency = false
            compressionOptions.deadline = Self.deadline(options.compressSeconds)
            // The verdicts were given by the full model that answered then — the stale one, when the fleet has
            // drifted; the student learns the fine-tuned model's answers instead, if it is ahead of the current full
            // model on the recent labelled windows (what the fleet sees now).
            let recent = holdoutForFull.subset(
                Array((holdoutForFull.count - prepared.recentHoldout)..<holdoutForFull.count))
            var ahead = false
            if recent.count > 0 {
                let fineTuned = Self.accuracy(try fullModel.logits(for: recent.windows).argmaxRows(), recent)
                ahead =
                    fineTuned > Self.accuracy(try currentFull.logits(for: recent.windows).argmaxRows(), recent)
                    + options.epsilon
            }
            let (verdictLabeled, changed) =
                ahead ? try Self.relabel(prepared.verdictLabeled, by: fullModel) : (prepared.verdictLabeled, 0)
            let trainingSet = Self.concatenate(
                Self.concatenate(prepared.train, prepared.groundTruth), verdictLabeled)
            let result = try CompressionPipeline.run(
                teacher: fullModel, teacherManifest: fullCandidate.manifest, spec: edgeSpec,
                data: CompressionData(train: trainingSet, test: holdoutForFull), options: compressionOptions,
                version: options.edgeVersion ?? Self.version(edgeSpec.name))
            let line = result.rows.map { "\($0.model) \(GateReport.percent($0.accuracy))" }.joined(separator: ", ")
            compressOutOfTime = result.distillation.stoppedAtDeadline
            let budget =
                compressOutOfTime ? " (time budget of \(Self.seconds(options.compressSeconds)) reached)" : ""
            return (
                result,
                "\(trainingSet.count) windows (\(ahead ? "\(changed) of \(verdictLabeled.count) verdict labels changed by the fine-tuned full model" : "verdict labels kept: the fine-tuned full model is not ahead on recent labelled windows")), distilled \(result.distillation.epochsRun) epochs, kept epoch \(result.distillation.bestEpoch)\(budget); \(line)"
            )
        }

        // Gate: candidate against the current edge model on the same holdout, each in its own standardization.
        let gate = try phase("gate") { () throws -> (GateReport, String) in
            let gate = try evaluateGate(
                candidate: compression.quantized, holdout: prepared.holdout, recent: prepared.recentHoldout,
                currentFull: currentFull, candidateFull: fullModel)
            return (gate, "\(gate.summary); \(gate.fullSummary)")
        }
        return Result(
            fullCandidate: fullCandidate, edgeCandidate: compression.artifact, compression: compression, gate: gate,
            hardExamplesWithGroundTruth: prepared.groundTruth.count,
            hardExamplesWithVerdict: prepared.verdictLabeled.count, hardExamplesSkipped: prepared.skipped,
            phases: phases, holdout: prepared.holdout, fineTuneOutOfTime: fineTuneOutOfTime,
            compressOutOfTime: compressOutOfTime)
    }

    /// The instant `seconds` from now, or nil for no budget.
    static func deadline(_ seconds: Double?) -> ContinuousClock.Instant? {
        seconds.map { ContinuousClock.now + .milliseconds(Int(max(0, $0) * 1000)) }
    }

    static func seconds(_ value: Double?) -> String { value.map { String(format: "%g s", $0) } ?? "none" }

    struct PreparedData {
        /// Original training windows replayed this round (at most ``Options/replayWindows``), normalized for the
        /// full model.
        var train: LabeledWindows
        /// Original training windows there were (outside the holdout).
        var originalTrainingWindows: Int
        /// Holdout windows, raw: the original test windows, then `recentHoldout` labelled hard examples.
        var holdout: LabeledWindows
        /// How many of the holdout's windows (its last ones) are labelled hard examples.
        var recentHoldout: Int
        /// Hard examples with ground truth, normalized for the full model.
        var groundTruth: LabeledWindows
        /// Hard examples labeled by the verdict, normalized for the full model.
        var verdictLabeled: LabeledWindows
        var skipped: Int
    }

    func prepare(data: DataSplit, hardExamples: [SampleStore.TrainingExample]) throws -> PreparedData {
        let manifest = full.manifest
        let input = manifest.input
        func fitted(_ set: LabeledWindows, _ role: String) throws -> LabeledWindows {
            guard set.length == input.window, set.channels == input.channels else {
                throw RetrainingError(
                    "\(role) windows are \(set.length)×\(set.channels), the full model takes \(input.window)×\(input.channels)"
                )
            }
            let unknown = Set(set.classNames).subtracting(manifest.classNames)
            guard unknown.isEmpty else {
                throw RetrainingError("\(role) classes \(unknown.sorted()) are not among \(manifest.classNames)")
            }
            return set.relabeled(to: manifest.classNames)
        }
        var train = try fitted(data.train, "training")
        var holdout: LabeledWindows
        if let test = data.test {
            holdout = try fitted(test, "test")
        } else {
            let parts = Trainer.stratifiedSplit(
                labels: train.labels, fraction: options.holdoutFraction, seed: options.seed)
            holdout = train.subset(parts.validation)
            train = train.subset(parts.train)
        }
        guard holdout.count > 0 else { throw RetrainingError("no holdout windows for the gate") }
        let originalTrainingWindows = train.count
        if let replay = options.replayWindows, replay < train.count {
            train = train.subset(Self.replaySample(labels: train.labels, count: max(0, replay), seed: options.seed))
        }
        input.normalize(&train.windows)

        // Hard-example windows arrive in the standardization of the edge model that escalated them; the
        // current edge model's is known and earlier ones may be given (`edgeInputs`), other versions are taken
        // to share the full model's (as the escalation server does).
        let size = input.window * input.channels
        var truth = (scalars: [Float](), labels: [Int]())
        var truthDevices: [String] = []
        var verdict = (scalars: [Float](), labels: [Int]())
        var skipped = 0
        let edgeInput = edge.manifest.input
        for example in hardExamples {
            guard example.channels == input.channels, example.length == input.window, example.window.count == size,
                (0..<manifest.classNames.count).contains(example.label)
            else {
                skipped += 1
                continue
            }
            var window = example.window
            Self.restandardize(
                &window, from: example.edgeModel == edge.manifest.version ? edgeInput : edgeInputs[example.edgeModel],
                to: input)
            if example.source == .groundTruth {
                truth.scalars += window
                truth.labels.append(example.label)
                truthDevices.append(example.device)
            } else {
                verdict.scalars += window
                verdict.labels.append(example.label)
            }
        }
        func windows(_ part: (scalars: [Float], labels: [Int])) -> LabeledWindows {
            LabeledWindows(
                windows: Tensor(shape: [part.labels.count, input.window, input.channels], scalars: part.scalars),
                labels: part.labels, classNames: manifest.classNames)
        }
        // A share of the labelled hard examples joins the holdout, raw like the rest of it, and is not trained on:
        // the gate's accuracy then also covers what the fleet sees now, not only the original test windows. Each
        // device's examples, in arrival order, are cut into blocks of `holdoutBlock`; numbering the blocks of all
        // devices as they start, every fifth (for the default fraction) is held out. Spread over the whole time,
        // the newest regime is both trained on and judged, and a held-out window's overlapping neighbours (a
        // device escalates runs of windows) mostly stay in the holdout with it.
        var groundTruth = windows(truth)
        var recent = 0
        let period = options.holdoutFraction > 0 ? max(2, Int((1 / options.holdoutFraction).rounded())) : 0
        // Each device's current block (its number among all blocks, as they start) and how full it is.
        var blocks: [String: (number: Int, filled: Int)] = [:]
        var started = 0
        var heldIndices: [Int] = []
        var keptIndices: [Int] = []
        for (i, device) in truthDevices.enumerated() {
            var block = blocks[device] ?? (number: -1, filled: Self.holdoutBlock)
            if block.filled == Self.holdoutBlock {
                block = (started, 0)
                started += 1
            }
            block.filled += 1
            blocks[device] = block
            if period > 0 && block.number % period == period - 1 {
                heldIndices.append(i)
            } else {
                keptIndices.append(i)
            }
        }
        if groundTruth.count >= Self.minimumLabelledForHoldout && !heldIndices.isEmpty {
            var held = groundTruth.subset(heldIndices)
            groundTruth = groundTruth.subset(keptIndices)
            input.standardization?.invert(&held.windows)
            recent = held.count
            holdout = Self.concatenate(holdout, held)
        }
        return PreparedData(
            train: train, originalTrainingWindows: originalTrainingWindows, holdout: holdout, recentHoldout: recent,
            groundTruth: groundTruth,
            verdictLabeled: windows(verdict), skipped: skipped)
    }

    func evaluateGate(
        candidate: QuantizedModel, holdout: LabeledWindows, recent: Int = 0, currentFull: FloatModel,
        candidateFull: FloatModel
    )
        throws -> GateReport
    {
        guard
            let threshold = options.threshold ?? edge.manifest.metrics["confidence.max_probability.p10"]
        else {
            throw RetrainingError(
                "edge model \(edge.manifest.version) has no confidence.max_probability.p10 in its metrics; give a threshold"
            )
        }
        var forCurrent = holdout.relabeled(to: edge.manifest.classNames)
        edge.manifest.input.normalize(&forCurrent.windows)
        var forCandidate = holdout
        full.manifest.input.normalize(&forCandidate.windows)
        let current = try Int8Engine(model: QuantizedModel(artifact: edge)).classify(windows: forCurrent.windows)
        let new = try Int8Engine(model: candidate).classify(windows: forCandidate.windows)
        // Escalation rates on the original test windows only: the current model escalated every recent labelled
        // window (that is how they reached the cloud), so counting them would favour any candidate.
        let original = holdout.count - recent
        func rate(_ confidences: [PredictionConfidence]) -> Double {
            Double(confidences.prefix(original).filter { Double($0.maxProbability) < threshold }.count)
                / Double(max(original, 1))
        }
        let currentAccuracy = Self.accuracy(current.confidences.map(\.label), forCurrent)
        let candidateAccuracy = Self.accuracy(new.confidences.map(\.label), forCandidate)
        let currentRate = rate(current.confidences)
        let candidateRate = rate(new.confidences)
        var reasons = [String]()
        if candidateAccuracy < currentAccuracy - options.epsilon {
            reasons.append(
                "accuracy \(GateReport.percent(candidateAccuracy)) is below the current \(GateReport.percent(currentAccuracy)) − ε (\(options.epsilon))"
            )
        }
        // The recent part: the holdout's last `recent` windows.
        let recentRange = original..<holdout.count
        func recentAccuracy(_ labels: [Int], _ data: LabeledWindows) -> Double? {
            guard recent > 0 else { return nil }
            let right = recentRange.filter { labels[$0] == data.labels[$0] }.count
            return Double(right) / Double(recent)
        }
        let currentRecent = recentAccuracy(current.confidences.map(\.label), forCurrent)
        let candidateRecent = recentAccuracy(new.confidences.map(\.label), forCandidate)
        if let reason = Self.escalationRefusal(
            candidate: candidateRate, current: currentRate, candidateRecent: candidateRecent,
            currentRecent: currentRecent, epsilon: options.epsilon, slack: options.escalationSlack)
        {
            reasons.append(reason)
        }
        // The full models: both take the full model's standardization (the round keeps its input spec).
        let currentFullLabels = try currentFull.logits(for: forCandidate.windows).argmaxRows()
        let candidateFullLabels = try candidateFull.logits(for: forCandidate.windows).argmaxRows()
        let currentFullAccuracy = Self.accuracy(currentFullLabels, forCandidate)
        let candidateFullAccuracy = Self.accuracy(candidateFullLabels, forCandidate)
        let currentFullRecent = recentAccuracy(currentFullLabels, forCandidate)
        let candidateFullRecent = recentAccuracy(candidateFullLabels, forCandidate)
        var fullReasons = [String]()
        if candidateFullAccuracy < currentFullAccuracy - options.epsilon {
            fullReasons.append(
                "accuracy \(GateReport.percent(candidateFullAccuracy)) is below the current full model's \(GateReport.percent(currentFullAccuracy)) − ε (\(options.epsilon))"
            )
        }
        if let candidate = candidateFullRecent, let current = currentFullRecent, candidate < current - options.epsilon {
            fullReasons.append(
                "accuracy on the recent labelled windows \(GateReport.percent(candidate)) is below the current full model's \(GateReport.percent(current)) − ε (\(options.epsilon))"
            )
        }
        return GateReport(
            holdoutWindows: holdout.count, currentAccuracy: currentAccuracy, candidateAccuracy: candidateAccuracy,
            currentFullAccuracy: currentFullAccuracy, candidateFullAccuracy: candidateFullAccuracy,
            threshold: threshold, currentEscalationRate: currentRate, candidateEscalationRate: candidateRate,
            epsilon: options.epsilon, recentHoldoutWindows: recent,
            currentRecentAccuracy: currentRecent, candidateRecentAccuracy: candidateRecent,
            passed: reasons.isEmpty, reasons: reasons, currentFullRecentAccuracy: currentFullRecent,
            candidateFullRecentAccuracy: candidateFullRecent, fullPassed: fullReasons.isEmpty, fullReasons: fullReasons)
    }

    /// Brings a window from the standardization of the edge model that escalated it (`edgeInput`; nil: taken to
    /// share the full model's) to the full model's (`input`).
    static func restandardize(_ window: inout [Float], from edgeInput: InputSpec?, to input: InputSpec) {
        let channels = input.channels
        guard let edgeInput, edgeInput.mean.count == channels, edgeInput.std.count == channels,
            input.mean.count == channels, input.std.count == channels
        else { return }
        for k in window.indices {
            let c = k % channels
            window[k] = (window[k] * edgeInput.std[c] + edgeInput.mean[c] - input.mean[c]) / input.std[c]
        }
    }

    /// A stratified random sample of `count` indices of `labels`, ascending: each class keeps its share (at least
    /// one window of each class while `count` allows), the windows within a class drawn at random for `seed`.
    static func replaySample(labels: [Int], count: Int, seed: UInt64) -> [Int] {
        guard count < labels.count else { return Array(labels.indices) }
        var generator = SeededGenerator(seed: seed ^ 0x4E_504C_4159)
        var byClass = [Int: [Int]]()
        for (i, label) in labels.enumerated() { byClass[label, default: []].append(i) }
        var chosen = [Int]()
        var remaining = count
        let classes = byClass.keys.sorted()
        for (n, label) in classes.enumerated() {
            var members = byClass[label] ?? []
            generator.shuffle(&members)
            // This class's share of what is left, so rounding never overshoots `count`, less one window for each
            // class still to come (while `remaining` allows), so a rare class is not crowded out by the rounding.
            let share = Double(members.count) / Double(classes[n...].reduce(0) { $0 + (byClass[$1]?.count ?? 0) })
            let reserved = min(classes.count - n - 1, max(0, remaining - 1))
            let take = min(
                members.count, remaining,
                max(remaining > 0 ? 1 : 0, min(Int((Double(remaining) * share).rounded()), remaining - reserved)))
            chosen += members.prefix(take)
            remaining -= take
        }
        return chosen.sorted()
    }

    /// Labelled hard examples a round needs before it holds some of them out for the gate. 20.
    static let minimumLabelledForHoldout = 20
    /// Consecutive labelled hard examples of one device that go to the holdout, or to training, together. 5.
    static let holdoutBlock = 5

    static func accuracy(_ predictions: [Int], _ data: LabeledWindows) -> Double {
        Double(zip(predictions, data.labels).filter { $0 == $1 }.count) / Double(max(data.count, 1))
    }

    /// Why the gate refuses a candidate escalating at `candidate` (on the original test windows) against the current
    /// model's `current`, or nil: it must escalate strictly less (or both nothing), unless it is ahead on the recent
    /// labelled windows by more than `epsilon`, when it may escalate up to `slack` more.
    static func escalationRefusal(
        candidate: Double, current: Double, candidateRecent: Double?, currentRecent: Double?, epsilon: Double,
        slack: Double
    ) -> String? {
        if candidate < current || (candidate == 0 && current == 0) { return nil }
        guard let candidateRecent, let currentRecent, candidateRecent > currentRecent + epsilon else {
            return
                "escalation rate \(GateReport.percent(candidate)) is not below the current \(GateReport.percent(current))"
        }
        if candidate <= current + slack { return nil }
        return "escalation rate \(GateReport.percent(candidate)) is more than \(GateReport.percent(slack)) above the "
            + "current \(GateReport.percent(current)), though ahead on the recent labelled windows"
    }

    /// At most `limit` of `examples` (oldest first), in their order: the newest with ground truth, then the newest
    /// labelled by a verdict. Labels are few and arrive late; verdicts come with every escalation.
    static func newest(_ examples: [SampleStore.TrainingExample], limit: Int) -> [SampleStore.TrainingExample] {
        guard examples.count > limit else { return examples }
        let truth = examples.indices.filter { examples[$0].source == .groundTruth }.suffix(limit)
        let verdicts = examples.indices.filter { examples[$0].source != .groundTruth }.suffix(limit - truth.count)
        return (Array(truth) + Array(verdicts)).sorted().map { examples[$0] }
    }

    /// `set` labelled by `model`'s most probable class (windows in its standardization, 256 at a time), and how many
    /// labels that changed.
    static func relabel(_ set: LabeledWindows, by model: FloatModel) throws -> (LabeledWindows, changed: Int) {
        var relabeled = set
        var changed = 0
        for start in stride(from: 0, to: set.count, by: 256) {
            let range = start..<min(start + 256, set.count)
            for (k, label) in try model.logits(for: set.windows.slice(range)).argmaxRows().enumerated() {
                if relabeled.labels[range.lowerBound + k] != label { changed += 1 }
                relabeled.labels[range.lowerBound + k] = label
            }
        }
        return (relabeled, changed)
    }

    static func concatenate(_ a: LabeledWindows, _ b: LabeledWindows) -> LabeledWindows {
        guard b.count > 0 else { return a }
        return LabeledWindows(
            windows: Tensor(
                shape: [a.count + b.count, a.length, a.channels], scalars: a.windows.scalars + b.windows.scalars),
            labels: a.labels + b.labels, classNames: a.classNames)
    }

    static func version(_ name: String, date: Date = Date()) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return "\(name)-r\(f.string(from: date))"
    }
}
