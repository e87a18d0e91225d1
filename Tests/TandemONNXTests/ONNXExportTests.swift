import Foundation
import TandemCore
import TandemONNX
import TandemTestSupport
import TandemTraining
import Testing

/// Tandem models exported to ONNX and run by ONNX Runtime: float graphs agree with Tandem's float engine, int8
/// QDQ graphs with its int8 engine, and an exported graph imports back to the same model.
@Suite(.serialized)
struct ONNXExportTests {
    static let windows = 1000

    /// The PyTorch FCN fixture as a Tandem float artifact with a per-channel standardization.
    func floatArtifact() throws -> (ModelArtifact, FloatModel) {
        let bytes = try [UInt8](Data(contentsOf: ONNXRuntime.fixtures.appendingPathComponent("fcn.onnx")))
        let imported = try ONNXImporter.importModel(try ONNXModel(bytes: bytes))
        let model = try imported.floatModel()
        let manifest = ModelManifest(
            name: "fcn", version: "fcn-1", createdAt: "2026-12-01T00:00:00Z", architecture: model.architecture,
            input: InputSpec(channels: 3, window: 64, hop: 32, mean: [0.5, -1, 2], std: [2, 0.5, 1.5]),
            classNames: ["a", "b", "c", "d"])
        return (try ModelArtifact(model: model, manifest: manifest, goldenInputs: rawWindows(4, seed: 1)), model)
    }

    /// Raw (unstandardized) windows around the model's mean and std.
    func rawWindows(_ count: Int, seed: UInt64) -> Tensor {
        var generator = SeededGenerator(seed: seed)
        let mean: [Float] = [0.5, -1, 2], std: [Float] = [2, 0.5, 1.5]
        var x = Tensor(shape: [count, 64, 3])
        for i in 0..<x.count { x.scalars[i] = mean[i % 3] + std[i % 3] * generator.nextGaussian() }
        return x
    }

    /// ONNX Runtime's logits for `raw` windows on the exported `artifact`.
    func onnxRuntimeLogits(_ artifact: ModelArtifact, _ raw: Tensor, scratch: URL) throws -> [Float] {
        let url = scratch.appendingPathComponent("model.onnx")
        try Data(try ONNXExporter.export(artifact).serialized()).write(to: url)
        let result = try ONNXRuntime.run(model: url, input: raw.scalars, shape: raw.shape, scratch: scratch)
        #expect(result.shape == [raw.shape[0], artifact.manifest.classNames.count])
        return result.values
    }

    @Test("float export with the standardization as Sub/Div: ONNX Runtime on raw windows within 1e-4 of Tandem")
    func floatExport() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let (artifact, model) = try floatArtifact()
        let raw = rawWindows(Self.windows, seed: 2)
        let theirs = try onnxRuntimeLogits(artifact, raw, scratch: scratch.url)
        let ours = try model.logits(for: artifact.manifest.input.standardization!.applied(to: raw))
        let worst = zip(ours.scalars, theirs).map { abs($0 - $1) }.max() ?? .infinity
        print("float export: largest |Tandem − ONNX Runtime| over \(Self.windows) windows: \(worst)")
        #expect(worst <= 1e-4)
    }

    @Test("int8 export as QDQ: ONNX Runtime's top-1 agrees with Tandem's int8 engine on at least 99.5 % of windows")
    func int8Export() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let (float, model) = try floatArtifact()
        let standardization = float.manifest.input.standardization!
        let calibration = standardization.applied(to: rawWindows(256, seed: 3))
        let quantized = try PostTrainingQuantizer().quantize(model, calibration: calibration)
        var manifest = float.manifest
        manifest.version = "fcn-1-int8"
        let artifact = try ModelArtifact(
            quantized: quantized, manifest: manifest, goldenInputs: calibration.slice(0..<4))
        let exported = try ONNXExporter.export(artifact)
        let ops = Set(exported.graph.nodes.map(\.opType))
        #expect(ops.isSuperset(of: ["QuantizeLinear", "DequantizeLinear", "Conv", "Gemm"]))
        #expect(exported.graph.initializers.contains { if case .int8 = $0.values { true } else { false } })

        let raw = rawWindows(Self.windows, seed: 4)
        let theirs = try onnxRuntimeLogits(artifact, raw, scratch: scratch.url)
        let ours = try Int8Engine(model: quantized).logits(for: standardization.applied(to: raw))
        let classes = 4
        var agree = 0
        var worst: Float = 0
        for n in 0..<Self.windows {
            let a = Array(ours.scalars[(n * classes)..<((n + 1) * classes)])
            let b = Array(theirs[(n * classes)..<((n + 1) * classes)])
            if a.firstIndex(of: a.max()!) == b.firstIndex(of: b.max()!) { agree += 1 }
            worst = max(worst, zip(a, b).map { abs($0 - $1) }.max()!)
        }
        let agreement = Double(agree) / Double(Self.windows)
        print("int8 QDQ export: top-1 agreement \(agreement), largest logit difference \(worst)")
        #expect(agreement >= 0.995)
    }

    @Test("an exported graph imports back: the same layers, the standardization recovered, the same logits")
    func roundTrip() throws {
        let (artifact, model) = try floatArtifact()
        let imported = try ONNXImporter.importModel(
            try ONNXModel(bytes: try ONNXExporter.export(artifact).serialized()))
        #expect(imported.inputLayout == .channelsLast)
        #expect(imported.architecture == model.architecture)
        #expect(imported.standardization == artifact.manifest.input.standardization)
        let x = artifact.goldenInputs
        let worst = zip(try imported.floatModel().logits(for: x).scalars, try model.logits(for: x).scalars)
            .map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-6)

        let bare = try ONNXExporter.export(artifact, standardization: false)
        #expect(!bare.graph.nodes.contains { $0.opType == "Sub" || $0.opType == "Div" })
        #expect(bare.metadata.contains { $0.key == "tandem.mean" && $0.value == "0.5,-1.0,2.0" })
    }
}
