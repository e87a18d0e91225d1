import Foundation
import TandemCore

/// Settings of one compression run: distillation, pruning, calibration and what to measure.
public struct CompressionOptions: Sendable {
    /// Optimizer, epochs, early stopping and seed of the distillation (usually the edge spec's `training:`).
    public var training: TrainingConfiguration
    /// Temperature and hard/soft weighting of the distillation loss. Default T = 4, α = 0.5.
    public var distillation: DistillationLoss
    /// How much to prune after distillation; nil keeps every filter and unit. Default nil.
    public var pruning: PruningTarget?
    /// Which filters and units go first. Default L1 norm.
    public var pruningCriterion = PruningCriterion.l1
    /// Upper bound on distillation epochs after pruning (at a third of the learning rate). Default 30.
    public var fineTuneEpochs = 30
    /// Training windows used to calibrate int8 activation ranges. Default 256.
    public var calibrationWindows = 256
    /// How activation ranges are chosen. Default the 99.99th percentile.
    public var calibrationMethod = CalibrationMethod.percentile(99.99)
    /// Perturbed copies of the training windows the teacher labels for the student when the data set is small
    /// (the training plan makes no validation split); nil never adds them. Default ``TransferAugmentation()``.
    public var smallDataAugmentation: TransferAugmentation? = TransferAugmentation()
    /// Whether to time batch-1 inference of every model (up to 550 windows each). Default true.
    public var measuresLatency = true
    /// When distillation (and the fine-tuning after pruning) must end, keeping the best weights so far; nil: no
    /// deadline. Quantizing and scoring still run after it. Default nil.
    public var deadline: ContinuousClock.Instant?
    /// The share of held-out training windows the novelty threshold calls novel (``NoveltyStatistics``); nil
    /// records no novelty statistics. Default 4 %.
    public var noveltyFalseAlarmRate: Double? = CompressionOptions.defaultNoveltyFalseAlarmRate

    /// The default target false-alarm rate of novelty escalation on held-out training windows: 4 %. Only the
    /// confident ones among them add escalations (the others are escalated as uncertain anyway).
    public static let defaultNoveltyFalseAlarmRate = 0.04

    /// The largest drop of the int8 model's test accuracy below the teacher's that `tandem compress` accepts by
    /// default (``CompressionResult/requireAccuracy(withinMarginOfTeacher:)``): 5 percentage points.
    public static let defaultMaximumAccuracyDrop = 0.05

    /// Options with the given distillation settings and the defaults above.
    public init(training: TrainingConfiguration, distillation: DistillationLoss) {
        self.training = training
        self.distillation = distillation
    }
}

/// The windows a compression run uses, already normalized as the teacher expects and labeled in its class order.
public struct CompressionData: Sendable {
    /// Labeled training windows (also the calibration source).
    public var train: LabeledWindows
    /// Held-out windows every model is scored on; their confidence distribution goes into the manifest.
    public var test: LabeledWindows
    /// Extra training windows without labels (`[n, window, channels]`), learned from the teacher alone.
    public var unlabeled: Tensor?

    /// Creates the data of a run.
    public init(train: LabeledWindows, test: LabeledWindows, unlabeled: Tensor? = nil) {
        self.train = train
        self.test = test
        self.unlabeled = unlabeled
    }
}

/// What a compression run produced: the int8 artifact and one comparison row per model.
public struct CompressionResult: Sendable {
    /// One model's scores on the test windows.
    public struct Row: Codable, Sendable, Equatable {
        /// `teacher float`, `student float`, `pruned float` or `int8`.
        public var model: String
        /// Top-1 accuracy on the test windows.
        public var accuracy: Double
        /// Parameter count.
        public var parameters: Int
        /// Weight storage in bytes.
        public var bytes: Int
        /// Multiply-accumulates per window.
        public var macs: Int
        /// Mean batch-1 latency in microseconds, nil when not measured.
        public var latencyMicrosecondsBatch1: Double?
    }

    /// The int8 edge model, unsigned, with the metrics in its manifest.
    public var artifact: ModelArtifact
    /// The int8 model itself.
    public var quantized: QuantizedModel
    /// Teacher, student, (pruned) and int8 rows, in that order.
    public var rows: [Row]
    /// Fraction of test windows on which the int8 model and the float model it came from agree.
    public var int8AgreementWithFloat: Double
    /// What pruning removed, if it ran.
    public var pruning: PruningReport?
    /// Percentiles of the int8 model's confidence on the test windows (`confidence.{measure}.pNN`).
    public var confidence: [String: Double]
    /// Number of test windows.
    public var testWindows: Int
    /// Number of labeled training windows.
    public var trainingWindows: Int
    /// The distillation of the student (before any pruning): epochs run, the kept epoch, validation.
    public var distillation: TrainingResult

    /// How far the int8 model's test accuracy is below the teacher's (negative when it is above).
    public var accuracyDropFromTeacher: Double {
        guard let teacher = rows.first, let int8 = rows.last else { return 0 }
        return teacher.accuracy - int8.accuracy
    }

    /// Checks that the int8 model is at most `margin` below the teacher on the test windows.
    ///
    /// - Parameter margin: the largest accepted drop, as a fraction (0.05 is 5 percentage points).
    /// - Throws: ``CompressionError`` with code `studentBelowTeacher`, whose message gives both accuracies, the
    ///   test and training sizes and what the distillation ran.
    public func requireAccuracy(withinMarginOfTeacher margin: Double) throws {
        let drop = accuracyDropFromTeacher
        guard drop > margin, let teacher = rows.first, let int8 = rows.last else { return }
        func percent(_ x: Double) -> String { String(format: "%.2f %%", x * 100) }
        func points(_ x: Double) -> String { String(format: "%.1f pp", x * 100) }
        let distilled =
            "distillation ran \(distillation.epochsRun) epochs"
            + (distillation.validation == nil ? " without a validation split" : "")
            + " and kept epoch \(distillation.bestEpoch)"
        throw CompressionError(
            .studentBelowTeacher,
            "the int8 student scores \(percent(int8.accuracy)) on the \(testWindows) test windows, \(points(drop)) below "
                + "the teacher's \(percent(teacher.accuracy)); at most \(points(margin)) is accepted. "
                + "It was distilled from \(trainingWindows) training windows (\(distilled)). More training windows, "
                + "a larger edge spec or a higher margin may help")
    }
}

/// Why a compression result was refused.
public struct CompressionError: Error, CustomStringConvertible, Sendable {
    /// What went wrong.
    public enum Code: Sendable, Equatable {
        /// The int8 student is further below the teacher than the accepted margin.
        case studentBelowTeacher
        /// An int8 full model (``FullModelQuantization``) agrees too little with its float model or scores too far
        /// below it.
        case int8UnfaithfulToFloat
    }

    /// What went wrong.
    public var code: Code
    /// What and by how much, for the user.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The message.
    public var description: String { message }
}

/// Distil → prune → fine-tune → int8-quantize → evaluate: a float teacher becomes an int8 edge model.
///
/// `tandem compress` and the cloud's retraining round both run this; see docs/INT8.md.
public enum CompressionPipeline {
    /// Compresses `teacher` into the layers of `spec`.
    ///
    /// - Parameters:
    ///   - teacher: the float teacher.
    ///   - teacherManifest: its manifest; the edge model inherits its input spec and class names.
    ///   - spec: the edge model's layers and name.
    ///   - data: normalized training and test windows.
    ///   - options: distillation, pruning and calibration settings.
    ///   - version: the new model's version.
    ///   - progress: one line per epoch and step, on the calling thread.
    /// - Throws: `ModelSpecError` for bad settings or a diverging loss, `ModelError` when shapes do not fit,
    ///   `QuantizationError` or `ArtifactError` from quantization and packaging.
    public static func run(
        teacher: FloatModel, teacherManifest: ModelManifest, spec: ModelSpecFile, data: CompressionData,
        options: CompressionOptions, version: String, progress: (String) -> Void = { _ in }
    ) throws -> CompressionResult {
        let config = options.training
        try config.validate()
        let input = teacherManifest.input
        let train = data.train
        let test = data.test
        let classes = teacherManifest.classNames.count

        // On a small data set, perturbed copies of the training windows join the unlabeled windows.
        var unlabeled = data.unlabeled
        if let augmentation = options.smallDataAugmentation, augmentation.copies > 0,
            config.plan(labels: train.labels).validation.isEmpty
        {
            let copies = augmentation.perturbedCopies(of: train.windows, seed: config.seed)
            progress(
                "small data set (\(train.count) windows): the teacher also labels \(copies.shape[0]) perturbed copies")
            unlabeled =
                unlabeled.map { extra in
                    extra.count == 0
                        ? copies
                        : Tensor(
                            shape: [extra.shape[0] + copies.shape[0], input.window, input.channels],
                            scalars: extra.scalars + copies.scalars)
                } ?? copies
        }

        // Distil.
        let student = try Network(
            layers: spec.layers, window: input.window, channels: input.channels, classes: classes, seed: config.seed)
        progress(
            "distilling \(spec.name) (\(student.parameterCount) parameters) from \(teacherManifest.name) at T=\(options.distillation.temperature), α=\(options.distillation.alpha)"
        )
        let distillation = try Distiller(configuration: config, loss: options.distillation).distil(
            student, teacher: teacher, on: train, unlabeled: unlabeled, until: options.deadline
        ) { progress($0.line) }
        let studentModel = try student.exportFloatModel()

        // Prune and fine-tune.
        var prunedNetwork = student
        var pruningReport: PruningReport?
        if let target = options.pruning {
            let (network, report) = try StructuredPruner(criterion: options.pruningCriterion, target: target).prune(
                student)
            progress(
                "pruned: \(report.parametersBefore) → \(report.parametersAfter) parameters, \(report.macsBefore) → \(report.macsAfter) MACs; fine-tuning"
            )
            var fineTune = config
            fineTune.epochs = options.fineTuneEpochs
            fineTune.learningRate = config.learningRate / 3
            _ = try Distiller(configuration: fineTune, loss: options.distillation).distil(
                network, teacher: teacher, on: train, unlabeled: unlabeled, until: options.deadline
            ) { progress($0.line) }
            prunedNetwork = network
            pruningReport = report
        }
        let prunedModel = try prunedNetwork.exportFloatModel()

        // Quantize.
        let calibrationCount = max(1, min(options.calibrationWindows, train.count))
        let calibrationWindows = train.windows.gathering(
            Array(stride(from: 0, to: train.count, by: max(1, train.count / calibrationCount)).prefix(calibrationCount))
        )
        let quantized = try PostTrainingQuantizer(method: options.calibrationMethod).quantize(
            prunedModel, calibration: calibrationWindows)
        let engine = Int8Engine(model: quantized)

        // Evaluate.
        func accuracy(_ predictions: [Int]) -> Double {
            Double(zip(predictions, test.labels).filter { $0 == $1 }.count) / Double(max(test.count, 1))
        }
        // Batch-1 latency: the mean over up to 500 windows after 50 untimed ones.
        let timed = min(test.count, 500)
        func floatLatency(_ model: FloatModel) throws -> Double? {
            guard options.measuresLatency else { return nil }
            for i in 0..<min(50, timed) { _ = try model.probabilities(for: test.windows.slice(i..<(i + 1))) }
            let start = ContinuousClock.now
            for i in 0..<timed { _ = try model.probabilities(for: test.windows.slice(i..<(i + 1))) }
            return (ContinuousClock.now - start).seconds * 1e6 / Double(max(timed, 1))
        }
        var rows = [CompressionResult.Row]()
        var floatPredictions = [Int]()
        for (name, model) in [
            ("teacher float", teacher), ("student float", studentModel), ("pruned float", prunedModel),
        ] {
            if name == "pruned float" && options.pruning == nil { continue }
            let predictions = try model.logits(for: test.windows).argmaxRows()
            floatPredictions = predictions
            rows.append(
                CompressionResult.Row(
                    model: name, accuracy: accuracy(predictions), parameters: model.parameterCount,
                    bytes: 4 * model.parameterCount, macs: model.macsPerWindow,
                    latencyMicrosecondsBatch1: try floatLatency(model)))
        }
        let int8 = try engine.classify(windows: test.windows)
        let int8Predictions = int8.confidences.map(\.label)
        var int8Latency: Double?
        if options.measuresLatency {
            var logits = [Float](repeating: 0, count: classes)
            try test.windows.scalars.withUnsafeBufferPointer { x in
                try logits.withUnsafeMutableBufferPointer { l in
                    let size = input.window * input.channels
                    for i in 0..<min(50, timed) {
                        _ = try engine.classify(
                            UnsafeBufferPointer(rebasing: x[(i * size)..<((i + 1) * size)]), logits: l)
                    }
                    let start = ContinuousClock.now
                    for i in 0..<timed {
                        _ = try engine.classify(
                            UnsafeBufferPointer(rebasing: x[(i * size)..<((i + 1) * size)]), logits: l)
                    }
                    int8Latency = (ContinuousClock.now - start).seconds * 1e6 / Double(max(timed, 1))
                }
            }
        }
        rows.append(
            CompressionResult.Row(
                model: "int8", accuracy: accuracy(int8Predictions), parameters: quantized.parameterCount,
                bytes: quantized.storageBytes, macs: quantized.macsPerWindow, latencyMicrosecondsBatch1: int8Latency))
        let agreement =
            Double(zip(floatPredictions, int8Predictions).filter { $0 == $1 }.count) / Double(max(test.count, 1))
        let confidence = confidencePercentiles(int8.confidences)

        // Novelty: the window statistics of each class on the training windows, and the threshold.
        var novelty: NoveltyStatistics?
        if let rate = options.noveltyFalseAlarmRate {
            novelty = try noveltyStatistics(
                engine: engine, windows: train, classes: classes, falseAlarmRate: rate)
        }

        var metrics = confidence
        if let novelty {
            metrics["novelty.test_rate"] = try noveltyRate(engine: engine, statistics: novelty, windows: test.windows)
        }
        metrics["test_accuracy"] = rows.last?.accuracy
        metrics["float_test_accuracy"] = rows[rows.count - 2].accuracy
        metrics["int8_agreement_with_float"] = agreement
        metrics["teacher_test_accuracy"] = rows.first?.accuracy
        metrics["test_windows"] = Double(test.count)
        let manifest = ModelManifest(
            name: spec.name, version: version, parentVersion: teacherManifest.version,
            createdAt: ISO8601DateFormatter().string(from: Date()), architecture: [], input: input,
            classNames: teacherManifest.classNames, trainingDataDigest: teacherManifest.trainingDataDigest,
            metrics: metrics, novelty: novelty)
        let artifact = try ModelArtifact(
            quantized: quantized, manifest: manifest, goldenInputs: test.windows.slice(0..<min(8, test.count)))
        return CompressionResult(
            artifact: artifact, quantized: quantized, rows: rows, int8AgreementWithFloat: agreement,
            pruning: pruningReport, confidence: confidence, testWindows: test.count, trainingWindows: train.count,
            distillation: distillation)
    }

    /// The novelty statistics of labeled normalized windows (``NoveltyStatistics``), against `engine`'s
    /// predictions, the threshold set so that a share `falseAlarmRate` of the windows held out of the fit is novel.
    public static func noveltyStatistics(
        engine: Int8Engine, windows: LabeledWindows, classes: Int, falseAlarmRate: Double
    ) throws -> NoveltyStatistics? {
        let size = windows.length * windows.channels
        return try windows.windows.scalars.withUnsafeBufferPointer { x in
            let predictions = try (0..<windows.count).map { i in
                try engine.classify(UnsafeBufferPointer(rebasing: x[(i * size)..<((i + 1) * size)])).label
            }
            return NoveltyStatistics.fit(
                windows: x, length: windows.length, channels: windows.channels, labels: windows.labels,
                predictions: predictions, classes: classes, falseAlarmRate: falseAlarmRate)
        }
    }

    /// Novelty scores of normalized windows `[n, window, channels]`, each against its predicted class.
    public static func noveltyScores(engine: Int8Engine, statistics: NoveltyStatistics, windows: Tensor) throws
        -> [Float]
    {
        let n = windows.shape[0]
        let size = windows.count / max(n, 1)
        let scorer = NoveltyScorer(statistics: statistics, length: windows.shape[1], channels: windows.shape[2])
        return try windows.scalars.withUnsafeBufferPointer { x in
            try (0..<n).map { i in
                let window = UnsafeBufferPointer(rebasing: x[(i * size)..<((i + 1) * size)])
                return scorer.score(window, predicted: try engine.classify(window).label)
            }
        }
    }

    /// The share of normalized windows whose novelty score is above the threshold.
    static func noveltyRate(engine: Int8Engine, statistics: NoveltyStatistics, windows: Tensor) throws -> Double {
        let scores = try noveltyScores(engine: engine, statistics: statistics, windows: windows)
        return Double(scores.filter { $0 > statistics.threshold }.count) / Double(max(scores.count, 1))
    }

    /// The 1st to 99th percentiles of each confidence measure, keyed `confidence.{measure}.pNN`.
    ///
    /// Percentile q is the sorted value at index round(q/100 · (n − 1)).
    public static func confidencePercentiles(_ confidences: [PredictionConfidence]) -> [String: Double] {
        var confidence = [String: Double]()
        let measures: [(String, KeyPath<PredictionConfidence, Float>)] = [
            ("max_probability", \.maxProbability), ("margin", \.margin), ("entropy", \.entropyConfidence),
        ]
        for (name, path) in measures {
            let sorted = confidences.map { Double($0[keyPath: path]) }.sorted()
            guard !sorted.isEmpty else { continue }
            for q in [1, 5, 10, 25, 50, 75, 90, 95, 99] {
                let index = min(sorted.count - 1, Int((Double(q) / 100 * Double(sorted.count - 1)).rounded()))
                confidence["confidence.\(name).p\(String(format: "%02d", q))"] = sorted[index]
            }
        }
        return confidence
    }
}

extension Duration {
    fileprivate var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) * 1e-18
    }
}
