import Foundation
import TandemCore
import TandemONNX
import TandemTestSupport
import Testing

/// ONNX models exported from PyTorch, imported and checked against ONNX Runtime on the same windows.
@Suite(.serialized)
struct ONNXImportTests {
    static let windows = 1000

    func load(_ name: String, _ options: ONNXImportOptions = .init()) throws -> ONNXImport {
        let bytes = try [UInt8](Data(contentsOf: ONNXRuntime.fixtures.appendingPathComponent(name)))
        return try ONNXImporter.importModel(try ONNXModel(bytes: bytes), options: options)
    }

    /// The largest difference between Tandem's output and ONNX Runtime's on `windows` random windows.
    func largestDifference(_ name: String, _ imported: ONNXImport) throws -> Float {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        var generator = SeededGenerator(seed: 11)
        let count = Self.windows * imported.window * imported.channels
        let x = Tensor(
            shape: [Self.windows, imported.window, imported.channels],
            scalars: (0..<count).map { _ in generator.nextGaussian() })
        let model = try imported.floatModel()
        let ours = imported.outputIsProbabilities ? try model.probabilities(for: x) : try model.logits(for: x)
        let shape: [Int] =
            switch imported.inputLayout {
            case .channelsFirst: [Self.windows, imported.channels, imported.window]
            case .channelsLast: [Self.windows, imported.window, imported.channels]
            case .univariate: [Self.windows, imported.window]
            }
        let theirs = try ONNXRuntime.run(
            model: ONNXRuntime.fixtures.appendingPathComponent(name), input: imported.onnxInput(from: x), shape: shape,
            scratch: scratch.url)
        #expect(theirs.shape == [Self.windows, imported.classNames.count])
        #expect(theirs.values.count == ours.count)
        var worst: Float = 0
        for (a, b) in zip(ours.scalars, theirs.values) { worst = max(worst, abs(a - b)) }
        return worst
    }

    @Test("a PyTorch FCN: batch norm folded into the convolutions, dropout gone; within 1e-4 of ONNX Runtime")
    func pytorchFCN() throws {
        let imported = try load("fcn.onnx")
        #expect(imported.inputLayout == .channelsFirst && imported.window == 64 && imported.channels == 3)
        #expect(
            imported.architecture.map(\.type)
                == [.conv1d, .relu, .conv1d, .relu, .conv1d, .relu, .globalavgpool1d, .dense])
        #expect(imported.architecture.allSatisfy { $0.padding ?? .same == .same })
        #expect(imported.notes.filter { $0.hasPrefix("folded BatchNormalization") }.count == 3)
        let difference = try largestDifference("fcn.onnx", imported)
        print("fcn.onnx: largest |Tandem − ONNX Runtime| over \(Self.windows) windows: \(difference)")
        #expect(difference <= 1e-4)
    }

    @Test("a channels-last network with Keras exporters' Transpose, Unsqueeze/Squeeze, Reshape, MatMul+Add, Softmax")
    func kerasStyle() throws {
        let imported = try load("keras_style.onnx", ONNXImportOptions(classNames: ["a", "b", "c", "d", "e"]))
        #expect(imported.inputLayout == .channelsLast && imported.outputIsProbabilities)
        #expect(
            imported.architecture.map(\.type)
                == [.conv1d, .relu, .conv1d, .relu, .maxpool1d, .flatten, .dense, .relu, .dense])
        #expect(imported.architecture[0].stride == 2 && imported.architecture[2].dilation == 2)
        let difference = try largestDifference("keras_style.onnx", imported)
        print("keras_style.onnx: largest |Tandem − ONNX Runtime| over \(Self.windows) windows: \(difference)")
        #expect(difference <= 1e-4)
    }

    @Test("nn.Flatten of a channels-first sequence: the dense columns are reordered into Tandem's flatten")
    func channelsFirstFlatten() throws {
        let imported = try load("cnn_flatten.onnx")
        #expect(imported.architecture.map(\.type) == [.conv1d, .relu, .avgpool1d, .conv1d, .relu, .flatten, .dense])
        let difference = try largestDifference("cnn_flatten.onnx", imported)
        print("cnn_flatten.onnx: largest |Tandem − ONNX Runtime| over \(Self.windows) windows: \(difference)")
        #expect(difference <= 1e-4)
    }

    struct Refusal: Sendable, CustomTestStringConvertible {
        var file: String
        var opType: String
        var says: String
        var testDescription: String { file }
    }

    @Test(
        "graphs Tandem cannot run are refused with the node's name, op type and why",
        arguments: [
            Refusal(file: "residual.onnx", opType: "Add", says: "residual or skip connection"),
            Refusal(file: "leaky_relu.onnx", opType: "LeakyRelu", says: "its only activation is ReLU"),
            Refusal(file: "depthwise.onnx", opType: "Conv", says: "grouped or depthwise convolution (group 4)"),
        ])
    func refusals(_ refusal: Refusal) throws {
        let model = try ONNXModel(
            bytes: try [UInt8](Data(contentsOf: ONNXRuntime.fixtures.appendingPathComponent(refusal.file))))
        let error = try #require(throws: ONNXError.self) { try ONNXImporter.importModel(model) }
        let node = try #require(model.graph.nodes.first { $0.opType == refusal.opType && error.node == $0.name })
        #expect(error.code == .unsupported && error.opType == refusal.opType)
        #expect(error.description.contains("node '\(node.name)' (\(refusal.opType))"), "\(error)")
        #expect(error.message.contains(refusal.says), "\(error)")
    }

    @Test("options that contradict the file, and a symbolic window without --window, are refused")
    func badOptions() throws {
        #expect(throws: ONNXError.self) { try load("fcn.onnx", ONNXImportOptions(window: 32)) }
        let classes = #expect(throws: ONNXError.self) { try load("fcn.onnx", ONNXImportOptions(classNames: ["x"])) }
        #expect(classes?.message.contains("4 outputs but 1 class names") == true)
        var model = try ONNXModel(
            bytes: try [UInt8](Data(contentsOf: ONNXRuntime.fixtures.appendingPathComponent("fcn.onnx"))))
        model.graph.inputs[0].shape = [.parameter("N"), .value(3), .parameter("L")]
        let open = #expect(throws: ONNXError.self) { try ONNXImporter.importModel(model) }
        #expect(open?.message.contains("pass it as an option") == true, "\(String(describing: open))")
        let fixed = try ONNXImporter.importModel(model, options: ONNXImportOptions(window: 48))
        #expect(fixed.window == 48 && fixed.channels == 3)
        model.opsetImports = ["": 11]
        let old = #expect(throws: ONNXError.self) { try ONNXImporter.importModel(model) }
        #expect(old?.message.contains("opset 11") == true)
    }
}
