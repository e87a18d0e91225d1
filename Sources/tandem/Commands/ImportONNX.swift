import ArgumentParser
import Foundation
import TandemCore
import TandemONNX

/// `tandem import`: an ONNX model as a `.tandem` artifact.
struct ImportONNX: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import an ONNX model (PyTorch, Keras) as a .tandem artifact.",
        discussion: """
            The graph must be a sequential 1-D network: Conv, BatchNormalization, Relu, MaxPool, AveragePool, \
            GlobalAveragePool/ReduceMean, Gemm or MatMul+Add, Softmax, with Transpose, Reshape, Flatten, Squeeze \
            and Unsqueeze that only move the channel axis (docs/ONNX.md). Batch norm is folded into the \
            convolution before it; Dropout and Identity are dropped. Anything else is refused with the node's \
            name, op type and why. The input may be [N, C, L] (PyTorch), [N, L, C] (Keras) or [N, L]. Golden \
            outputs for the self-test are computed by Tandem on random windows.
            """
    )

    @Argument(help: "The ONNX model (.onnx).") var model: String
    @Option(help: "Where to write the model artifact.") var out: String
    @Option(help: "Samples per window, when the file leaves it open (or to check it).") var window: Int?
    @Option(help: "Channels per sample, when the file leaves it open (or to check it).") var channels: Int?
    @Option(help: "Samples between window starts (default window / 2).") var hop: Int?
    @Option(help: "Class names in output order, comma-separated (default 0, 1, …).") var classes: String?
    @Option(help: "File with one class name per line, in output order.") var classesFrom: String?
    @Option(help: "Per-channel mean raw samples are standardized with, comma-separated.") var mean: String?
    @Option(help: "Per-channel standard deviation, comma-separated.") var std: String?
    @Option(help: "Model name (default: the file name).") var name: String?
    @Option(help: "Model version (default: NAME-<UTC time>).") var version: String?
    @Flag(help: "Print the result as JSON on stdout.") var json = false

    struct Output: Encodable {
        var model: String
        var version: String
        var inputLayout: String
        var window: Int
        var channels: Int
        var classes: [String]
        var layers: [String]
        var parameters: Int
        var outputIsProbabilities: Bool
        var notes: [String]
    }

    func validate() throws {
        if classes != nil && classesFrom != nil { throw ValidationError("give --classes or --classes-from, not both") }
        if (mean == nil) != (std == nil) { throw ValidationError("--mean and --std go together") }
    }

    static func floats(_ text: String, _ option: String) throws -> [Float] {
        try text.split(separator: ",").map {
            guard let v = Float($0.trimmingCharacters(in: .whitespaces)), v.isFinite else {
                throw ValidationError("\(option): '\($0)' is not a finite number")
            }
            return v
        }
    }

    func run() throws {
        Console.logFloatKernels()
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: model)))
        var classNames: [String]?
        if let classes { classNames = classes.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        if let classesFrom {
            classNames = try String(contentsOfFile: classesFrom, encoding: .utf8).split(whereSeparator: \.isNewline)
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        let imported: ONNXImport
        do {
            imported = try ONNXImporter.importModel(
                try ONNXModel(bytes: bytes),
                options: ONNXImportOptions(window: window, channels: channels, classNames: classNames))
        } catch {
            throw CommandFailure("\(model): \(error)")
        }
        var standardization = imported.standardization
        if let mean, let std {
            guard standardization == nil else {
                throw CommandFailure("\(model) standardizes its input in the graph already; leave out --mean and --std")
            }
            standardization = Standardization(
                mean: try Self.floats(mean, "--mean"), std: try Self.floats(std, "--std"))
        }
        let floatModel = try imported.floatModel()
        let modelName = name ?? URL(fileURLWithPath: model).deletingPathExtension().lastPathComponent
        let input = InputSpec(
            channels: imported.channels, window: imported.window, hop: hop ?? max(1, imported.window / 2),
            mean: standardization?.mean ?? [], std: standardization?.std ?? [])
        try input.validate()
        var generator = SeededGenerator(seed: 19)
        let golden = Tensor(
            shape: [8, imported.window, imported.channels],
            scalars: (0..<(8 * imported.window * imported.channels)).map { _ in generator.nextGaussian() })
        let manifest = ModelManifest(
            name: modelName, version: version ?? ModelManifest.defaultVersion(name: modelName),
            createdAt: ModelManifest.now(), architecture: floatModel.architecture, input: input,
            classNames: imported.classNames)
        let artifact = try ModelArtifact(model: floatModel, manifest: manifest, goldenInputs: golden)
        try artifact.write(to: URL(fileURLWithPath: out))
        for note in imported.notes { Console.log(note) }
        Console.log("wrote \(out): \(manifest.name) \(manifest.version)")
        let output = Output(
            model: out, version: manifest.version, inputLayout: imported.inputLayout.rawValue,
            window: imported.window, channels: imported.channels, classes: imported.classNames,
            layers: floatModel.architecture.map(\.type.rawValue), parameters: floatModel.parameterCount,
            outputIsProbabilities: imported.outputIsProbabilities, notes: imported.notes)
        if json {
            try Console.printJSON(output)
        } else {
            print(
                "model \(out) (\(manifest.version)): \(output.layers.joined(separator: " → ")), "
                    + "\(floatModel.parameterCount) parameters, input \(imported.inputLayout.rawValue) "
                    + "\(imported.window)×\(imported.channels), \(imported.classNames.count) classes")
        }
    }
}
