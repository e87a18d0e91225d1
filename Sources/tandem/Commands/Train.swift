import ArgumentParser
import Crypto
import Foundation
import TandemCore
import TandemTraining

/// `tandem train`: fit a model spec to labeled data and write a `.tandem` artifact.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model from a spec on labeled data and write a .tandem artifact.",
        discussion: """
            DATA is a UCR/UEA .ts file, a long-format CSV stream (timestamp,ch1..chN,label), or a \
            directory holding NAME_TRAIN.ts + NAME_TEST.ts or train.csv + test.csv (see docs/DATA.md). \
            Channels are standardized with statistics from the training windows; the statistics are \
            stored in the model. Training holds out a stratified validation split, stops early when \
            the validation loss stops improving and keeps the best epoch's weights. A progress line \
            per epoch goes to stderr. When DATA has a test part the model is scored on it and the \
            metrics are stored in the manifest.
            """
    )

    @Option(help: "Training data: .ts file, CSV stream, or a directory (see discussion).") var data: String
    @Option(help: "Model spec YAML (see docs/MODEL-SPEC.md).") var spec: String
    @Option(help: "Where to write the model artifact.") var out: String
    @Option(
        help:
            "Exact upper bound on epochs (default: the spec's, else 100, raised on small data sets to about 3,000 steps)."
    ) var epochs: Int?
    @Option(help: "Random seed (default: the spec's, else 42).") var seed: UInt64?
    @Option(help: "Window length for CSV streams (default: the spec's input.window, else 128).") var window: Int?
    @Option(help: "Hop between windows for CSV streams (default: the spec's input.hop, else window / 2).") var hop: Int?
    @Option(help: "Batch size (default: the spec's, else 16).") var batchSize: Int?
    @Option(help: "Early-stopping patience in epochs; 0 disables (default: the spec's, else 10).") var patience: Int?
    @Option(help: "Unequal-length .ts series: require, pad:N, pad-longest or resample:N.")
    var lengthPolicy = LengthPolicyOption(argument: "require")!
    @Option(help: "Run stratified k-fold cross-validation first and report it (k ≥ 2).") var folds: Int?
    @Option(help: "Model version string (default: NAME-<UTC time>).") var version: String?
    @Option(help: "Version of the model this one derives from, recorded in the manifest.") var parent: String?
    @Option(
        help: ArgumentHelp(
            "Leave a class out: its windows are dropped from the training and test parts and the model does not "
                + "know it (repeatable). For testing novelty escalation (`tandem eval --cascade`).",
            valueName: "name"))
    var excludeClass: [String] = []
    @Flag(help: "Print the result as JSON on stdout.") var json = false

    struct Output: Encodable {
        var model: String
        var version: String
        var parameters: Int
        var epochsRun: Int
        var bestEpoch: Int
        var stoppedEarly: Bool
        var validationAccuracy: Double?
        var testAccuracy: Double?
        var testMacroF1: Double?
        var crossValidation: CrossValidationReport?
        var trainWindows: Int
        var testWindows: Int
    }

    func run() throws {
        Console.logFloatKernels()
        let specFile = try ModelSpecFile.load(contentsOf: URL(fileURLWithPath: spec))
        var config = specFile.training ?? TrainingConfiguration()
        if let epochs {
            config.epochs = epochs
            config.minimumSteps = 0
        }
        if let seed { config.seed = seed }
        if let batchSize { config.batchSize = batchSize }
        if let patience { config.patience = patience }
        try config.validate()
        let window = self.window ?? specFile.input?.window ?? 128
        let hop = self.hop ?? specFile.input?.hop ?? max(1, window / 2)

        MemoryTuning.reuseLargeAllocations()
        let split = try DataSource.load(
            path: data, window: window, hop: hop, lengthPolicy: try lengthPolicy.policy(fallbackLength: nil))
        Console.log("data: \(split.description)")
        var train = split.train
        var test = split.test
        if !excludeClass.isEmpty {
            let unknown = Set(excludeClass).subtracting(train.classNames)
            guard unknown.isEmpty else {
                throw CommandFailure(
                    "--exclude-class \(unknown.sorted().joined(separator: ", ")): not a class of \(data) "
                        + "(\(train.classNames.joined(separator: ", ")))")
            }
            train = train.excluding(classes: Set(excludeClass))
            test = test?.excluding(classes: Set(excludeClass))
            Console.log(
                "left out \(excludeClass.joined(separator: ", ")): \(train.count) training windows of "
                    + "\(train.classNames.joined(separator: ", "))")
        }
        let normalization = Standardization.fit(train.windows)
        normalization.apply(to: &train.windows)
        if test != nil { normalization.apply(to: &test!.windows) }

        let classes = train.classNames.count
        guard classes >= 2 else { throw CommandFailure("\(data): need at least 2 classes, found \(classes)") }
        let trainer = Trainer(configuration: config)
        var crossValidation: CrossValidationReport?
        if let folds {
            crossValidation = try trainer.crossValidate(layers: specFile.layers, on: train, folds: folds) {
                fold, report in
                Console.log("fold \(fold)/\(folds)  \(report.line)")
            }
            if let cv = crossValidation {
                Console.log(
                    "cross-validation: accuracy \(Console.percent(cv.meanAccuracy)) ± \(Console.percent(cv.accuracyStandardDeviation)) over \(folds) folds"
                )
            }
        }
        let network = try Network(
            layers: specFile.layers, window: train.length, channels: train.channels, classes: classes, seed: config.seed
        )
        Console.log(
            "training \(specFile.name): \(network.parameterCount) parameters on \(train.count) windows of \(train.length)×\(train.channels), \(classes) classes"
        )
        let result = try trainer.train(network, on: train) { Console.log($0.line) }
        Console.log(
            "kept epoch \(result.bestEpoch) of \(result.epochsRun)\(result.stoppedEarly ? " (stopped early)" : "")")
        let model = try network.exportFloatModel()

        var metrics = [String: Double]()
        if let v = result.validation { metrics["validation_accuracy"] = v.accuracy }
        var testReport: ClassificationReport?
        if let test {
            let predictions = try model.logits(for: test.windows).argmaxRows()
            let report = ClassificationReport(
                labels: test.labels, predictions: predictions, classNames: test.classNames)
            metrics["test_accuracy"] = report.accuracy
            metrics["test_macro_f1"] = report.macroF1
            testReport = report
            Console.log(
                "test: accuracy \(Console.percent(report.accuracy)), macro-F1 \(String(format: "%.4f", report.macroF1)) on \(test.count) windows"
            )
        }
        if let cv = crossValidation { metrics["cross_validation_accuracy"] = cv.meanAccuracy }

        let golden = (test ?? train).windows.slice(0..<min(8, (test ?? train).count))
        let digest = train.windows.scalars.withUnsafeBytes { SHA256.hash(data: $0) }.map { String(format: "%02x", $0) }
            .joined()
        let manifest = ModelManifest(
            name: specFile.name, version: version ?? ModelManifest.defaultVersion(name: specFile.name),
            parentVersion: parent,
            createdAt: ModelManifest.now(), architecture: model.architecture,
            input: InputSpec(
                channels: train.channels, window: train.length, hop: hop, sampleRateHz: split.sampleRateHz,
                mean: normalization.mean, std: normalization.std,
                channelNames: split.channelNames),
            classNames: train.classNames, trainingDataDigest: digest, metrics: metrics)
        let artifact = try ModelArtifact(model: model, manifest: manifest, goldenInputs: golden)
        try artifact.write(to: URL(fileURLWithPath: out))
        Console.log("wrote \(out): \(manifest.name) \(manifest.version)")

        let output = Output(
            model: out, version: manifest.version, parameters: network.parameterCount, epochsRun: result.epochsRun,
            bestEpoch: result.bestEpoch, stoppedEarly: result.stoppedEarly,
            validationAccuracy: result.validation?.accuracy,
            testAccuracy: testReport?.accuracy, testMacroF1: testReport?.macroF1, crossValidation: crossValidation,
            trainWindows: train.count, testWindows: test?.count ?? 0)
        if json {
            try Console.printJSON(output)
        } else {
            print(
                "model \(out) (\(manifest.version)): \(network.parameterCount) parameters, best epoch \(result.bestEpoch)/\(result.epochsRun)"
            )
            if let t = testReport {
                print("test accuracy \(Console.percent(t.accuracy)), macro-F1 \(String(format: "%.4f", t.macroF1))")
            }
        }
    }
}
