import ArgumentParser
import Foundation
import TandemCore
import TandemTraining

/// `tandem eval`: score a model artifact on labeled data.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score a .tandem model on labeled data: accuracy, macro-F1, per-class recall, confusion, latency.",
        discussion: """
            The artifact is verified (checksum, signature if --trusted-key is given, golden-input
            self-test) before use. DATA is read with the model's window and hop and normalized with
            the statistics stored in the model. For a directory with a train and a test part only the
            test part is scored. Class names in DATA must be among the model's.
            """
    )

    @Option(help: "Model artifact (.tandem).") var model: String
    @Option(help: "Labeled data: .ts file, CSV stream, or a directory (see `tandem train --help`).") var data: String
    @Option(help: "Unequal-length .ts series: require, pad[:N], pad-longest or resample[:N] (N defaults to the model's window).")
    var lengthPolicy = LengthPolicyOption(argument: "require")!
    @Option(help: "Public key file the model's signature must verify against (repeatable).") var trustedKey: [String] = []
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

    func run() throws {
        let loaded = try LoadedModel(path: model, trustedKeyPaths: trustedKey)
        let manifest = loaded.artifact.manifest
        let split = try DataSource.load(
            path: data, window: manifest.input.window, hop: manifest.input.hop,
            lengthPolicy: try lengthPolicy.policy(fallbackLength: manifest.input.window))
        var windows = split.test ?? split.train
        guard windows.channels == manifest.input.channels, windows.length == manifest.input.window else {
            throw CommandFailure(
                "\(data): windows are \(windows.length)×\(windows.channels), the model takes \(manifest.input.window)×\(manifest.input.channels)")
        }
        let unknown = Set(windows.classNames).subtracting(manifest.classNames)
        guard unknown.isEmpty else {
            throw CommandFailure("\(data): classes \(unknown.sorted()) are not among the model's \(manifest.classNames)")
        }
        windows = windows.relabeled(to: manifest.classNames)
        manifest.input.normalize(&windows.windows)

        let clock = ContinuousClock()
        var predictions = [Int]()
        let batched = try clock.measure { predictions = try loaded.logits(for: windows.windows).argmaxRows() }
        let sample = min(windows.count, 200)
        let single = try clock.measure {
            for i in 0..<sample { _ = try loaded.logits(for: windows.windows.slice(i..<(i + 1))) }
        }
        let report = ClassificationReport(labels: windows.labels, predictions: predictions, classNames: manifest.classNames)
        let output = Output(
            model: model, version: manifest.version, windows: windows.count, accuracy: report.accuracy,
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
        print("latency   \(String(format: "%.3f", output.meanLatencyMillisecondsBatch1)) ms/window (batch 1), \(Int(output.windowsPerSecondBatched)) windows/s batched")
        let width = max(12, (manifest.classNames.map(\.count).max() ?? 0) + 2)
        print("\n" + "class".padding(toLength: width, withPad: " ", startingAt: 0) + "recall   confusion (rows: truth, columns: predicted)")
        for (c, name) in manifest.classNames.enumerated() {
            let row = report.confusion[c].map { String(format: "%6d", $0) }.joined()
            print(name.padding(toLength: width, withPad: " ", startingAt: 0) + String(format: "%6.2f%%  ", report.recall[c] * 100) + row)
        }
    }
}

/// A model artifact read from disk, verified and ready to run.
struct LoadedModel {
    var artifact: ModelArtifact
    /// The model of a float32 artifact; nil for an int8 one.
    var model: FloatModel?
    /// The model of an int8 artifact; nil for a float32 one.
    var quantized: QuantizedModel?
    /// The engine running `quantized`, made once so timed calls measure inference only.
    private var engine: Int8Engine?

    /// Reads, verifies (checksum, optional signature) and self-tests an artifact.
    init(path: String, trustedKeyPaths: [String]) throws {
        let keys = try trustedKeyPaths.map { try SigningKeyFile.readPublicKey(from: URL(fileURLWithPath: $0)) }
        artifact = try ModelArtifact.read(
            from: URL(fileURLWithPath: path), trustedKeys: keys.isEmpty ? nil : keys, requireSignature: !keys.isEmpty)
        if artifact.manifest.numerics == QuantizedModel.numerics {
            let quantized = try QuantizedModel(artifact: artifact)
            self.quantized = quantized
            engine = Int8Engine(model: quantized)
        } else {
            model = try FloatModel(artifact: artifact)
        }
        try artifact.verifyGoldenOutputs(try logits(for: artifact.goldenInputs))
    }

    /// Logits of normalized windows, through the float model or the int8 engine.
    func logits(for windows: Tensor) throws -> Tensor {
        if let engine { return try engine.logits(for: windows) }
        guard let model else { throw CommandFailure("model \(artifact.manifest.name) has no weights") }
        return try model.logits(for: windows)
    }
}
