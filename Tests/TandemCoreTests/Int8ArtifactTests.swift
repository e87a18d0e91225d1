import Foundation
import Testing

@testable import TandemCore

struct Int8ArtifactTests {
    func artifact(seed: UInt64) throws -> (QuantizedModel, ModelArtifact, Tensor) {
        let model = try randomQuantizedModel(seed: seed)
        var g = SeededGenerator(seed: seed + 1)
        let golden = Tensor(
            shape: [4, model.window, model.channels],
            scalars: (0..<(4 * model.window * model.channels)).map { _ in g.nextGaussian() })
        let manifest = ModelManifest(
            name: "edge", version: "edge-1", createdAt: "2026-01-01T00:00:00Z", architecture: [],
            input: InputSpec(channels: model.channels, window: model.window, hop: model.window / 2),
            classNames: (0..<model.classes).map { "c\($0)" })
        return (model, try ModelArtifact(quantized: model, manifest: manifest, goldenInputs: golden), golden)
    }

    @Test("an int8 model survives the artifact byte format and reproduces its golden outputs exactly")
    func roundTrip() throws {
        let (model, artifact, golden) = try artifact(seed: 30)
        let read = try ModelArtifact(bytes: artifact.serialized())
        #expect(read.manifest.numerics == "int8")
        let loaded = try QuantizedModel(artifact: read)
        #expect(loaded.weights == model.weights && loaded.biases == model.biases)
        #expect(loaded.parameters.layers.map(\.multipliers) == model.parameters.layers.map(\.multipliers))
        let logits = try Int8Engine(model: loaded).logits(for: golden)
        #expect(logits == read.goldenOutputs)
        try read.verifyGoldenOutputs(logits, tolerance: 0)
        #expect(loaded.storageBytes == model.storageBytes)
    }

    @Test(
        "int8 artifacts with missing, mistyped or out-of-range tensors are rejected",
        arguments: [
            "no input scale", "weight as float", "negative weight scale", "bias missing", "zero point 300",
            "float numerics",
        ])
    func rejectsBadTensors(corruption: String) throws {
        let (_, artifact, _) = try artifact(seed: 31)
        var tensors = artifact.tensors
        var manifest = artifact.manifest
        func replace(_ name: String, _ storage: ArtifactTensor.Storage?) {
            tensors.removeAll { $0.name == name }
            if let storage { tensors.append(ArtifactTensor(name: name, storage)) }
        }
        switch corruption {
        case "no input scale": replace("input.scale", nil)
        case "weight as float": replace("0.weight", .float32(Tensor(shape: [8, 5, 3])))
        case "negative weight scale": replace("0.weight_scale", .float32(Tensor(shape: [8], repeating: -1)))
        case "bias missing": replace("2.bias", nil)
        case "zero point 300": replace("input.zero_point", .int32(shape: [1], values: [300]))
        default: manifest.numerics = "float32"
        }
        let broken = ModelArtifact(
            manifest: manifest, tensors: tensors, goldenInputs: artifact.goldenInputs,
            goldenOutputs: artifact.goldenOutputs)
        #expect(throws: QuantizationError.self) {
            try QuantizedModel(artifact: ModelArtifact(bytes: broken.serialized()))
        }
    }
}
