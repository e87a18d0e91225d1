import ArgumentParser
import Foundation
import TandemCore
import TandemTraining

/// `tandem eval`: score a model artifact on labeled data.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score a .tandem model on labeled data: accuracy, macro-F1, per-class recall, confusion, latency.",
        discussion: """
            The artifact is verified (checksum, signature if --trusted-key is given, golden-input \
            self-test) before use. DATA is read with the model's window and hop and normalized with \
            the statistics stored in the model. For a directory with a train and a test part only the \
            test part is scored. Class names in DATA must be among the model's.
            """
    )

    @Option(help: "Model artifact (.tandem) to score.") var model: String?
    @Flag(help: "Score an edge–cloud cascade of --edge and --full over escalation thresholds and budgets.")
    var cascade = false
    @Option(help: "With --cascade: the edge model.") var edge: String?
    @Option(help: "With --cascade: the full (cloud) model.") var full: String?
    @Option(help: "With --cascade: confidence measure the threshold applies to (max-probability, margin, entropy).")
    var measure = ConfidenceMeasure.maxProbability
    @Option(help: "With --cascade: comma-separated thresholds to score.")
    var thresholds = "0.5,0.6,0.7,0.8,0.9,0.95,0.99"
    @Option(help: "With --cascade: comma-separated escalation budgets (fractions of windows) to score.")
    var budgets = "0.01,0.02,0.05,0.10,0.15,0.20,0.30"
    @Option(help: "Labeled data: .ts file, CSV stream, or a directory (see `tandem train --help`).") var data: String
    @Option(
        help:
            "Unequal-length .ts series: require, pad[:N], pad-longest or resample[:N] (N defaults to the model's window)."
    )
    var lengthPolicy = LengthPolicyOption(argument: "require")!
    @Option(help: "Public key file the model's signature must verify against (repeatable).") var trustedKey: [String] =
        []
    @Flag(help: "Print the result as JSON on stdout.") var json = false

    struct Output: Encodable {
        var model: String
        var version: String
        var windows: Int
        var accuracy: Double
        var macroF1: Double
        var recall: [String: Double]
        var confusion: [[Int]]
        var classNames: [String]
        var meanLatencyMillisecondsBatch1: Double
        var windowsPerSecondBatched: Double
    }

    func validate() throws {
        if cascade {
            guard edge != nil, full != nil else { throw ValidationError("--cascade needs --edge and --full") }
        } else if model == nil {
            throw ValidationError("name the model with --model (or use --cascade --edge E --full F)")
        }
    }

    func run() throws {
        if cascade { return try runCascade() }
        let loaded = try LoadedModel(path: model ?? "", trustedKeyPaths: trustedKey)
        let manifest = loaded.artifact.manifest
        let split = try DataSource.load(
            path: data, window: manifest.input.window, hop: manifest.input.hop,
            lengthPolicy: try lengthPolicy.policy(fallbackLength: manifest.input.window))
        var windows = try (split.test ?? split.train).fitted(to: manifest, data: data)
        manifest.input.normalize(&windows.windows)

        let clock = ContinuousClock()
        var predictions = [Int]()
        let batched = try clock.measure { predictions = try loaded.logits(forNormalized: windows.windows).argmaxRows() }
        let sample = min(windows.count, 200)
        let single = try clock.measure {
            for i in 0..<sample { _ = try loaded.logits(forNormalized: windows.windows.slice(i..<(i + 1))) }
        }
        let report = ClassificationReport(
            labels: windows.labels, predictions: predictions, classNames: manifest.classNames)
        let output = Output(
            model: model ?? "", version: manifest.version, windows: windows.count, accuracy: report.accuracy,
            macroF1: report.macroF1,
            recall: Dictionary(uniqueKeysWithValues: zip(manifest.classNames, report.recall)),
            confusion: report.confusion, classNames: manifest.classNames,
            meanLatencyMillisecondsBatch1: single.seconds * 1000 / Double(max(sample, 1)),
            windowsPerSecondBatched: Double(windows.count) / max(batched.seconds, 1e-9))
        if json {
            try Console.printJSON(output)
            return
        }
        print("model \(manifest.name) \(manifest.version) on \(windows.count) windows of \(data)")
        print("accuracy  \(Console.percent(report.accuracy))")
        print("macro-F1  \(String(format: "%.4f", report.macroF1))")
        print(
            "latency   \(String(format: "%.3f", output.meanLatencyMillisecondsBatch1)) ms/window (batch 1), \(Int(output.windowsPerSecondBatched)) windows/s batched"
        )
        let width = max(12, (manifest.classNames.map(\.count).max() ?? 0) + 2)
        print(
            "\n" + "class".padding(toLength: width, withPad: " ", startingAt: 0)
                + "recall   confusion (rows: truth, columns: predicted)")
        for (c, name) in manifest.classNames.enumerated() {
            let row = report.confusion[c].map { String(format: "%6d", $0) }.joined()
            print(
                name.padding(toLength: width, withPad: " ", startingAt: 0)
                    + String(format: "%6.2f%%  ", report.recall[c] * 100) + row)
        }
    }
}

extension Eval {
    /// Bytes one escalated window costs upstream: the window as float16 plus a fixed header
    /// (ids, timestamps, model version, edge top-k) of at most 96 bytes.
    static func escalationBytes(window: Int, channels: Int) -> Int { 96 + window * channels * 2 }

    func runCascade() throws {
        let edgeModel = try LoadedModel(path: edge ?? "", trustedKeyPaths: trustedKey)
        let fullModel = try LoadedModel(path: full ?? "", trustedKeyPaths: trustedKey)
        let e = edgeModel.artifact.manifest, f = fullModel.artifact.manifest
        guard e.input.window == f.input.window, e.input.channels == f.input.channels, e.classNames == f.classNames
        else {
            throw CommandFailure(
                "the edge model (\(e.input.window)×\(e.input.channels), \(e.classNames)) and the full model (\(f.input.window)×\(f.input.channels), \(f.classNames)) do not take the same windows and classes"
            )
        }
        let split = try DataSource.load(
            path: data, window: e.input.window, hop: e.input.hop,
            lengthPolicy: try lengthPolicy.policy(fallbackLength: e.input.window))
        // Windows of classes the models do not know (a class left out of training) are scored for novelty only.
        let all = (split.test ?? split.train)
        let unseenClasses = all.classNames.filter { !e.classNames.contains($0) }
        let windows = try all.excluding(classes: Set(unseenClasses)).fitted(
            to: e, data: data, role: "the edge model")
        let unseen = all.subset(all.labels.indices.filter { unseenClasses.contains(all.classNames[all.labels[$0]]) })
        let edgeProbabilities = try edgeModel.probabilities(for: windows.windows)
        let fullPredictions = try fullModel.probabilities(for: windows.windows).argmaxRows()
        let classes = e.classNames.count
        let confidences = edgeProbabilities.scalars.withUnsafeBufferPointer { p in
            (0..<windows.count).map {
                PredictionConfidence(
                    probabilities: UnsafeBufferPointer(rebasing: p[($0 * classes)..<(($0 + 1) * classes)]))
            }
        }
        func numbers(_ text: String, _ name: String) throws -> [Double] {
            try text.split(separator: ",").map {
                guard let v = Double($0.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--\(name): `\($0)` is not a number")
                }
                return v
            }
        }
        let budgetList = try numbers(budgets, "budgets")
        var report = CascadeReport(
            edge: confidences, fullPredictions: fullPredictions, labels: windows.labels, measure: measure,
            thresholds: try numbers(thresholds, "thresholds").map(Float.init), budgets: budgetList,
            bytesPerWindow: Self.escalationBytes(window: e.input.window, channels: e.input.channels))
        if case .int8(let engine) = edgeModel.runner, let statistics = e.novelty,
            (try? statistics.validate(classes: e.classNames.count, channels: e.input.channels)) != nil
        {
            func scored(_ set: LabeledWindows) throws -> [(score: Float, confidence: Float)] {
                guard set.count > 0 else { return [] }
                var normalized = set.windows
                e.input.normalize(&normalized)
                let scores = try CompressionPipeline.noveltyScores(
                    engine: engine, statistics: statistics, windows: normalized)
                let probabilities = try edgeModel.probabilities(for: set.windows)
                return probabilities.scalars.withUnsafeBufferPointer { p in
                    (0..<set.count).map { i in
                        let confidence = PredictionConfidence(
                            probabilities: UnsafeBufferPointer(rebasing: p[(i * classes)..<((i + 1) * classes)]))
                        return (scores[i], confidence.value(of: measure))
                    }
                }
            }
            report.novelty = NoveltyReport(
                threshold: statistics.threshold, known: try scored(windows), unseen: try scored(unseen),
                unseenClasses: unseenClasses, budgets: budgetList)
        } else if !unseenClasses.isEmpty {
            throw CommandFailure(
                "\(data): classes \(unseenClasses) are not among the edge model's \(e.classNames), and the edge model "
                    + "has no novelty statistics to score them with (an int8 model from `tandem compress` has)")
        }
        if json {
            try Console.printJSON(report)
            return
        }
        print(
            "cascade \(e.name) \(e.version) → \(f.name) \(f.version) on \(report.windows) windows of \(data), measure \(measure.rawValue)"
        )
        print(
            "edge only \(Console.percent(report.edgeAccuracy)), full only \(Console.percent(report.fullAccuracy)), cloud-only uplink \(report.cloudOnlyBytes) bytes"
        )
        print("\nthreshold  budget   escalated   cascade acc   uplink bytes   uplink saved")
        for p in report.points {
            let budget = p.budget.map { String(format: "%5.1f%%", $0 * 100) } ?? "     -"
            print(
                String(
                    format: "%9.4f  %@   %8.2f%%   %10.2f%%   %12d   %11.2f%%", p.threshold, budget,
                    p.escalationRate * 100, p.cascadeAccuracy * 100, p.uplinkBytes, p.uplinkSaving * 100))
        }
        guard let novelty = report.novelty else { return }
        print(
            "\nnovelty threshold \(String(format: "%.3f", novelty.threshold)): \(Console.percent(novelty.knownNoveltyRate)) "
                + "of \(novelty.knownWindows) windows of known classes above it")
        if !novelty.unseenClasses.isEmpty {
            print(
                "unseen \(novelty.unseenClasses.joined(separator: ", ")): \(novelty.unseenWindows) windows, "
                    + "\(Console.percent(novelty.catchRate)) escalated as novel")
        }
        print("budget   extra escalation of known classes   unseen escalated (novel or unsure)")
        for p in novelty.points {
            print(
                String(
                    format: "%5.1f%%   %32.2f%%   %33.2f%%", p.budget * 100, p.extraEscalation * 100,
                    p.unseenEscalated * 100))
        }
    }
}

extension ConfidenceMeasure: ExpressibleByArgument {}

/// A model artifact read from disk, verified and ready to run: float32 through `FloatModel`, int8 through
/// `Int8Engine`.
struct LoadedModel {
    enum Runner {
        case float(FloatModel)
        case int8(Int8Engine)
    }

    var artifact: ModelArtifact
    var runner: Runner

    /// Reads, verifies (checksum, optional signature) and self-tests an artifact.
    init(path: String, trustedKeyPaths: [String]) throws {
        let keys = try trustedKeyPaths.map { try SigningKeyFile.readPublicKey(from: URL(fileURLWithPath: $0)) }
        artifact = try ModelArtifact.read(
            from: URL(fileURLWithPath: path), trustedKeys: keys.isEmpty ? nil : keys, requireSignature: !keys.isEmpty)
        try artifact.manifest.input.validate()
        runner =
            artifact.manifest.numerics == "int8"
            ? .int8(Int8Engine(model: try QuantizedModel(artifact: artifact)))
            : .float(try FloatModel(artifact: artifact))
        try artifact.verifyGoldenOutputs(try logits(forNormalized: artifact.goldenInputs))
    }

    /// The float model, for commands that need one (a distillation teacher).
    func floatModel() throws -> FloatModel {
        guard case .float(let model) = runner else {
            throw CommandFailure(
                "\(artifact.manifest.name) \(artifact.manifest.version) is an \(artifact.manifest.numerics) model; a float32 model is needed here"
            )
        }
        return model
    }

    /// Logits for windows already normalized with the model's statistics.
    func logits(forNormalized windows: Tensor) throws -> Tensor {
        switch runner {
        case .float(let model): return try model.logits(for: windows)
        case .int8(let engine): return try engine.logits(for: windows)
        }
    }

    /// Class probabilities for raw windows, normalized with the model's own statistics.
    func probabilities(for raw: Tensor) throws -> Tensor {
        var windows = raw
        artifact.manifest.input.normalize(&windows)
        var p = try logits(forNormalized: windows)
        let (rows, width) = (p.shape[0], p.shape[1])
        p.scalars.withUnsafeMutableBufferPointer { Kernels.softmax($0.baseAddress!, rows: rows, width: width) }
        return p
    }
}
