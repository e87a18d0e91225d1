import Foundation
import TandemCore
import TandemTestSupport
import Testing

@testable import TandemTraining

struct ModelArtifactRoundTripTests {
    func trainedModel() throws -> (FloatModel, LabeledWindows) {
        let data = sinusoidWindows(count: 64, seed: 21)
        var config = TrainingConfiguration()
        config.epochs = 2
        config.patience = 0
        let network = try Network(layers: smallSpec, window: 32, channels: 2, classes: 3, seed: 5)
        _ = try Trainer(configuration: config).train(network, on: data)
        return (try network.exportFloatModel(), data)
    }

    func manifest(for model: FloatModel) -> ModelManifest {
        ModelManifest(
            name: "small", version: "small-1", createdAt: "2026-01-01T00:00:00Z", architecture: model.architecture,
            input: InputSpec(channels: 2, window: 32, hop: 16), classNames: ["class0", "class1", "class2"])
    }

    @Test("a trained model written to a file and read back gives the same outputs and passes its self-test")
    func roundTrip() throws {
        let (model, data) = try trainedModel()
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let url = scratch.url.appendingPathComponent("small.tandem")
        try ModelArtifact(model: model, manifest: manifest(for: model), goldenInputs: data.windows.slice(0..<4)).write(
            to: url)
        let artifact = try ModelArtifact.read(from: url)
        let loaded = try FloatModel(artifact: artifact)
        try artifact.verifyGoldenOutputs(try loaded.logits(for: artifact.goldenInputs))
        #expect(try loaded.logits(for: data.windows) == (try model.logits(for: data.windows)))
    }

    @Test("a weight changed after packaging fails the golden self-test")
    func tamperedWeightFailsSelfTest() throws {
        let (model, data) = try trainedModel()
        var artifact = try ModelArtifact(
            model: model, manifest: manifest(for: model), goldenInputs: data.windows.slice(0..<4))
        let index = try #require(artifact.tensors.firstIndex { $0.name == "0.weight" })
        guard case .float32(var w) = artifact.tensors[index].storage else { Issue.record("not float"); return }
        w.scalars[0] += 0.5
        artifact.tensors[index] = .float32("0.weight", w)
        // The file is internally consistent (fresh checksum), so only the self-test can catch it.
        let reread = try ModelArtifact(bytes: artifact.serialized())
        let tampered = try FloatModel(artifact: reread)
        #expect(throws: SelfTestError.self) {
            try reread.verifyGoldenOutputs(try tampered.logits(for: reread.goldenInputs))
        }
    }

    @Test("an int8 artifact is refused by the float loader with a clear error")
    func refusesOtherNumerics() throws {
        let (model, data) = try trainedModel()
        var m = manifest(for: model)
        m.numerics = "int8"
        let artifact = try ModelArtifact(model: model, manifest: m, goldenInputs: data.windows.slice(0..<1))
        #expect { try FloatModel(artifact: artifact) } throws: { "\($0)".contains("int8") }
    }

    @Test("a manifest whose normalization does not fit the channels is refused, not a crash")
    func refusesBadNormalization() throws {
        let (model, data) = try trainedModel()
        var m = manifest(for: model)
        m.input.mean = [0, 0, 0]
        m.input.std = [1, 1, 1]
        let wrongCount = try ModelArtifact(model: model, manifest: m, goldenInputs: data.windows.slice(0..<1))
        #expect { try FloatModel(artifact: wrongCount) } throws: { "\($0)".contains("3 means") }
        m.input.mean = [0, 0]
        m.input.std = [1, 0]
        let zeroStd = try ModelArtifact(model: model, manifest: m, goldenInputs: data.windows.slice(0..<1))
        #expect(throws: ModelError.self) { try FloatModel(artifact: zeroStd) }
    }
}
