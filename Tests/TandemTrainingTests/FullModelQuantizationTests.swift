import Foundation
import TandemCore
import Testing

@testable import TandemTraining

/// `tandem compress --int8-only`: a full model quantized as it is, and the gate that decides whether it may stand
/// in for its float form.
struct FullModelQuantizationTests {
    /// The FCN's shape (cloud-config/models/full.yaml) at a size a test trains in seconds: three stride-1 `same`
    /// convolutions with batch norm and ReLU, global average pooling, a dense classifier.
    static let fcnShape: [LayerSpec] = [
        LayerSpec(type: .conv1d, filters: 16, kernel: 8, padding: .same),
        LayerSpec(type: .batchnorm1d),
        LayerSpec(type: .relu),
        LayerSpec(type: .conv1d, filters: 32, kernel: 5, padding: .same),
        LayerSpec(type: .batchnorm1d),
        LayerSpec(type: .relu),
        LayerSpec(type: .conv1d, filters: 16, kernel: 3, padding: .same),
        LayerSpec(type: .batchnorm1d),
        LayerSpec(type: .relu),
        LayerSpec(type: .globalavgpool1d),
        LayerSpec(type: .dense),
    ]

    static let manifest = ModelManifest(
        name: "fcn", version: "fcn-1", createdAt: "2026-01-01T00:00:00Z", architecture: [],
        input: InputSpec(channels: 2, window: 32, hop: 16), classNames: ["class0", "class1", "class2"])

    /// A trained float model of the FCN's shape, and its data.
    static func trained() throws -> (FloatModel, CompressionData) {
        let train = sinusoidWindows(count: 240, seed: 41)
        let test = sinusoidWindows(count: 600, seed: 42)
        let network = try trainedNetwork(fcnShape, on: train, seed: 43)
        return (try network.exportFloatModel(), CompressionData(train: train, test: test))
    }

    @Test("an FCN-shaped full model passes 99.5 % / 0.3 pp; the manifest records both; the artifact reloads the same")
    func faithfulFullModelIsAccepted() throws {
        let (float, data) = try Self.trained()
        let result = try FullModelQuantization.run(
            model: float, manifest: Self.manifest, data: data, calibrationWindows: 256, method: .percentile(99.99),
            version: "fcn-1-int8")
        #expect(result.agreement >= 0.995, "agreement \(result.agreement)")
        #expect(
            result.floatAccuracy - result.int8Accuracy <= 0.003, "\(result.int8Accuracy) vs \(result.floatAccuracy)")
        #expect(result.isAccepted)
        try result.requireAccepted()

        let manifest = result.artifact.manifest
        #expect(manifest.numerics == "int8" && manifest.name == "fcn" && manifest.parentVersion == "fcn-1")
        #expect(manifest.metrics["int8_agreement_with_float"] == result.agreement)
        #expect(manifest.metrics["test_accuracy"] == result.int8Accuracy)
        #expect(manifest.metrics["float_test_accuracy"] == result.floatAccuracy)
        #expect(manifest.metrics["int8_gate_minimum_agreement"] == 0.995)
        #expect(manifest.metrics["int8_gate_maximum_accuracy_drop"] == 0.003)
        #expect(manifest.metrics["test_windows"] == 600)

        // Written and read back, the int8 engine predicts what was measured.
        let reloaded = try QuantizedModel(artifact: ModelArtifact(bytes: result.artifact.serialized()))
        let predictions = try Int8Engine(model: reloaded).classify(windows: data.test.windows).confidences.map(\.label)
        let accuracy = Double(zip(predictions, data.test.labels).filter { $0 == $1 }.count) / 600
        #expect(abs(accuracy - result.int8Accuracy) < 1e-12)
    }

    @Test("calibrated on windows at 1/100 of their scale, the int8 model saturates and the gate refuses it")
    func unfaithfulFullModelIsRefused() throws {
        let (float, data) = try Self.trained()
        var badCalibration = data
        badCalibration.train.windows = Tensor(
            shape: data.train.windows.shape, scalars: data.train.windows.scalars.map { $0 * 0.01 })
        let result = try FullModelQuantization.run(
            model: float, manifest: Self.manifest, data: badCalibration, calibrationWindows: 256, method: .minMax,
            version: "fcn-1-int8")
        #expect(!result.isAccepted, "agreement \(result.agreement)")
        let error = try #require(throws: CompressionError.self) { try result.requireAccepted() }
        #expect(error.code == .int8UnfaithfulToFloat)
        #expect(error.message.contains("99.50 %"), "\(error.message)")
    }
}
