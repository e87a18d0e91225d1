import ArgumentParser
import Foundation
import TandemCore
import TandemTraining

/// `tandem compress`: distil a float teacher into the edge spec, prune, quantize to int8, evaluate, write.
struct Compress: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Distil, prune and int8-quantize an edge model from a float teacher; print one comparison table.",
        discussion: """
            Reads DATA with the teacher's window, hop, classes and normalization. The student (the layers \
            of SPEC) is distilled from the teacher: loss = α·CE(labels) + (1−α)·T²·KL(teacher‖student) at \
            temperature T. --prune removes that fraction of every prunable layer's filters/units (or \
            --mac-budget removes the least important ones until a window costs at most N MACs), by L1 \
            norm or batch-norm scale, and fine-tunes by distillation again. The pruned model is then \
            quantized to int8 (per-channel symmetric weights, per-tensor asymmetric activations calibrated \
            on --calibration training windows). Teacher, student, pruned and int8 models are scored on \
            the test part of DATA (or a held-out 20 % when DATA has none); the int8 model's confidence \
            distribution on those windows is stored in its manifest metrics (`confidence.*.pNN`) so an \
            escalation budget can be turned into a threshold. Distillation follows the training rules for small \
            data sets (`tandem train`): the epoch bound is raised to the spec's minimum_steps and no validation \
            split is made from fewer than 30 windows; --epochs makes the bound exact. The int8 model is not \
            written when it scores more than --max-accuracy-drop below the teacher on the test windows.

            With --int8-only (no --spec) the teacher itself is quantized the same way, without distillation or \
            pruning: a full model the cloud can serve in int8 (`tandem-cloud serve --precision int8`). It is \
            written only when it agrees with the float model on at least --int8-min-agreement (99.5 %) of the test \
            windows and scores at most --int8-max-accuracy-drop (0.3 percentage points) below it; both measurements \
            and both bounds are recorded in its manifest metrics. \
            See docs/INT8.md.
            """
    )

    @Option(help: "Float teacher artifact (.tandem).") var teacher: String
    @Option(help: "Edge model spec YAML (not with --int8-only).") var spec: String?
    @Option(help: "Labeled data: .ts file, CSV stream, or a directory (see `tandem train --help`).") var data: String
    @Option(help: "Where to write the int8 artifact.") var out: String
    @Option(help: "Fraction of filters/units to remove from every prunable layer, in [0, 1).") var prune: Float?
    @Option(help: "Prune until a window costs at most this many MACs (instead of --prune).") var macBudget: Int?
    @Option(help: "Pruning criterion: l1 or bn-scale.") var pruneBy = "l1"
    @Option(help: "Unequal-length .ts series: require, pad[:N], pad-longest or resample[:N] (N: the teacher's window).")
    var lengthPolicy = LengthPolicyOption(argument: "require")!
    @Option(help: "Calibration windows for int8 activation ranges.") var calibration = 256
    @Option(help: "Calibration method: minmax, percentile[:P] or mse.") var calibrationMethod = "percentile:99.99"
    @Option(help: "Distillation temperature T.") var temperature: Float = 4
    @Option(help: "Weight α of the hard-label loss.") var alpha: Float = 0.5
    @Option(help: "Distillation epochs, exact (default: the spec's, raised on small data).") var epochs: Int?
    @Option(help: "Upper bound on fine-tuning epochs after pruning.") var fineTuneEpochs = 30
    @Option(help: "Random seed (default: the spec's).") var seed: UInt64?
    @Option(help: "Model version (default: NAME-<UTC time>).") var version: String?
    @Option(help: "Public key file the teacher's signature must verify against (repeatable).") var trustedKey:
        [String] = []
    @Option(
        help: ArgumentHelp(
            "Largest accepted drop of the int8 model's test accuracy below the teacher's, as a fraction; "
                + "a worse model is not written.", valueName: "fraction"))
    var maxAccuracyDrop = CompressionOptions.defaultMaximumAccuracyDrop
    @Flag(help: "Quantize the teacher itself to int8 (no distillation or pruning) and gate it against its float form.")
    var int8Only = false
    @Option(help: "--int8-only: smallest accepted top-1 agreement with the float model on the test windows.")
    var int8MinAgreement = FullModelQuantization.Gate.standard.minimumAgreement
    @Option(help: "--int8-only: largest accepted test accuracy drop below the float model, as a fraction.")
    var int8MaxAccuracyDrop = FullModelQuantization.Gate.standard.maximumAccuracyDrop
    @Option(
        help: ArgumentHelp(
            "Drop a class's windows from DATA (repeatable): the one `tandem train --exclude-class` left out.",
            valueName: "name"))
    var excludeClass: [String] = []
    @Option(
        help: ArgumentHelp(
            "Share of training windows the novelty threshold calls novel (0 records no novelty statistics).",
            valueName: "fraction"))
    var noveltyFalseAlarmRate = CompressionOptions.defaultNoveltyFalseAlarmRate
    @Flag(help: "Print the result as JSON on stdout.") var json = false

    func validate() throws {
        if int8Only {
            guard spec == nil, prune == nil, macBudget == nil else {
                throw ValidationError("--int8-only quantizes the teacher as it is: no --spec, --prune or --mac-budget")
            }
            guard (0...1).contains(int8MinAgreement), (0...1).contains(int8MaxAccuracyDrop) else {
                throw ValidationError("--int8-min-agreement and --int8-max-accuracy-drop must be in [0, 1]")
            }
        } else if spec == nil {
            throw ValidationError("--spec is required (or --int8-only)")
        }
    }

    /// One row of the comparison table.
    struct Row: Encodable {
        var model: String
        var accuracy: Double
        var parameters: Int
        var bytes: Int
        var macs: Int
        var latencyMicrosecondsBatch1: Double
    }

    struct Output: Encodable {
        var model: String
        var version: String
        var rows: [Row]
        var int8AgreementWithFloat: Double
        var pruning: PruningReport?
        var confidence: [String: Double]
        var testWindows: Int
    }

    func run() throws {
        Console.logFloatKernels()
        let loaded = try LoadedModel(path: teacher, trustedKeyPaths: trustedKey)
        let teacherModel = try loaded.floatModel()
        let teacherManifest = loaded.artifact.manifest
        let specFile = try spec.map { try ModelSpecFile.load(contentsOf: URL(fileURLWithPath: $0)) }
        var config = specFile?.training ?? TrainingConfiguration()
        if let epochs {
            config.epochs = epochs
            config.minimumSteps = 0
        }
        if let seed { config.seed = seed }
        try config.validate()
        let method = try CalibrationMethod(parsing: calibrationMethod)
        guard let criterion = PruningCriterion(rawValue: pruneBy) else {
            throw CommandFailure("--prune-by \(pruneBy): use l1 or bn-scale")
        }
        guard prune == nil || macBudget == nil else { throw CommandFailure("give --prune or --mac-budget, not both") }
        guard (0...1).contains(maxAccuracyDrop) else { throw CommandFailure("--max-accuracy-drop must be in [0, 1]") }
        guard (0..<1).contains(noveltyFalseAlarmRate) else {
            throw CommandFailure("--novelty-false-alarm-rate must be in [0, 1)")
        }
        let distillation = try DistillationLoss(temperature: temperature, alpha: alpha)

        // Data, shaped and normalized as the teacher expects.
        let input = teacherManifest.input
        let split = try DataSource.load(
            path: data, window: input.window, hop: input.hop,
            lengthPolicy: try lengthPolicy.policy(fallbackLength: input.window))
        let excluded = Set(excludeClass)
        var train = split.train.excluding(classes: excluded)
        var test: LabeledWindows
        if let held = split.test {
            test = held.excluding(classes: excluded)
        } else {
            let parts = Trainer.stratifiedSplit(labels: train.labels, fraction: 0.2, seed: config.seed)
            test = train.subset(parts.validation)
            train = train.subset(parts.train)
        }
        train = try train.fitted(to: teacherManifest, data: data, role: "the teacher")
        test = try test.fitted(to: teacherManifest, data: data, role: "the teacher")
        input.normalize(&train.windows)
        input.normalize(&test.windows)
        Console.log("data: \(train.count) training and \(test.count) test windows of \(input.window)×\(input.channels)")
        guard let specFile else {
            try quantizeTeacher(
                teacherModel, manifest: teacherManifest, data: CompressionData(train: train, test: test),
                method: method)
            return
        }

        var options = CompressionOptions(training: config, distillation: distillation)
        options.pruning = prune.map { .sparsity($0) } ?? macBudget.map { .macBudget($0) }
        options.pruningCriterion = criterion
        options.fineTuneEpochs = fineTuneEpochs
        options.calibrationWindows = calibration
        options.calibrationMethod = method
        options.noveltyFalseAlarmRate = noveltyFalseAlarmRate > 0 ? noveltyFalseAlarmRate : nil
        let result = try CompressionPipeline.run(
            teacher: teacherModel, teacherManifest: teacherManifest, spec: specFile,
            data: CompressionData(train: train, test: test), options: options,
            version: version ?? ModelManifest.defaultVersion(name: specFile.name), progress: Console.log)
        let manifest = result.artifact.manifest
        let rows = result.rows.map {
            Row(
                model: $0.model, accuracy: $0.accuracy, parameters: $0.parameters, bytes: $0.bytes, macs: $0.macs,
                latencyMicrosecondsBatch1: $0.latencyMicrosecondsBatch1 ?? 0)
        }
        do {
            try result.requireAccuracy(withinMarginOfTeacher: maxAccuracyDrop)
        } catch let error as CompressionError {
            for line in Self.table(rows) { Console.log(line) }
            throw CommandFailure("not writing \(out): \(error.message) (--max-accuracy-drop).")
        }
        try result.artifact.write(to: URL(fileURLWithPath: out))
        Console.log(
            "wrote \(out): \(manifest.name) \(manifest.version) (int8, \(result.artifact.serialized().count) bytes)")
        let agreement = result.int8AgreementWithFloat
        let confidence = result.confidence

        let output = Output(
            model: out, version: manifest.version, rows: rows, int8AgreementWithFloat: agreement,
            pruning: result.pruning,
            confidence: confidence, testWindows: test.count)
        if json {
            try Console.printJSON(output)
            return
        }
        for line in Self.table(rows) { print(line) }
        if let novelty = manifest.novelty {
            print(
                "novelty threshold \(String(format: "%.3f", novelty.threshold)) (\(Console.percent(novelty.falseAlarmRate)) of "
                    + "\(novelty.calibrationWindows) training windows above it); test windows above it: "
                    + Console.percent(manifest.metrics["novelty.test_rate"] ?? .nan))
        }
        print(
            "int8 top-1 agreement with the float model it was quantized from: \(Console.percent(agreement)) on \(test.count) windows"
        )
        let p = { (key: String) in String(format: "%.3f", confidence[key] ?? .nan) }
        print(
            "int8 confidence p05/p50/p95: max-prob \(p("confidence.max_probability.p05"))/\(p("confidence.max_probability.p50"))/\(p("confidence.max_probability.p95")), margin \(p("confidence.margin.p05"))/\(p("confidence.margin.p50"))/\(p("confidence.margin.p95")), entropy \(p("confidence.entropy.p05"))/\(p("confidence.entropy.p50"))/\(p("confidence.entropy.p95"))"
        )
    }

    /// `--int8-only`: the teacher quantized as it is, gated against its float form, written if accepted.
    private func quantizeTeacher(
        _ model: FloatModel, manifest: ModelManifest, data: CompressionData, method: CalibrationMethod
    ) throws {
        let gate = FullModelQuantization.Gate(
            minimumAgreement: int8MinAgreement, maximumAccuracyDrop: int8MaxAccuracyDrop)
        let result = try FullModelQuantization.run(
            model: model, manifest: manifest, data: data, calibrationWindows: calibration, method: method, gate: gate,
            version: version ?? ModelManifest.defaultVersion(name: "\(manifest.name)-int8"))
        let summary = String(
            format: "int8 %.2f%% vs float %.2f%% on %d test windows; agreement %.2f%%", result.int8Accuracy * 100,
            result.floatAccuracy * 100, result.testWindows, result.agreement * 100)
        do {
            try result.requireAccepted()
        } catch let error as CompressionError {
            throw CommandFailure(
                "not writing \(out): \(error.message) (--int8-min-agreement, --int8-max-accuracy-drop).")
        }
        try result.artifact.write(to: URL(fileURLWithPath: out))
        let written = result.artifact.manifest
        let bytes = result.artifact.serialized().count
        Console.log("wrote \(out): \(written.name) \(written.version) (int8, \(bytes) bytes)")
        if json {
            try Console.printJSON(
                Int8OnlyOutput(
                    model: out, version: written.version, floatAccuracy: result.floatAccuracy,
                    int8Accuracy: result.int8Accuracy, int8AgreementWithFloat: result.agreement,
                    testWindows: result.testWindows, minimumAgreement: gate.minimumAgreement,
                    maximumAccuracyDrop: gate.maximumAccuracyDrop))
        } else {
            print(summary)
        }
    }

    /// `--int8-only --json`.
    struct Int8OnlyOutput: Encodable {
        var model: String
        var version: String
        var floatAccuracy: Double
        var int8Accuracy: Double
        var int8AgreementWithFloat: Double
        var testWindows: Int
        var minimumAgreement: Double
        var maximumAccuracyDrop: Double
    }

    /// The comparison table, one line per model.
    static func table(_ rows: [Row]) -> [String] {
        ["model            accuracy  parameters     bytes        MACs  latency µs (batch 1)"]
            + rows.map { row in
                row.model.padding(toLength: 15, withPad: " ", startingAt: 0)
                    + String(
                        format: "  %7.2f%%  %10d  %8d  %10d  %8.1f", row.accuracy * 100, row.parameters, row.bytes,
                        row.macs, row.latencyMicrosecondsBatch1)
            }
    }
}
