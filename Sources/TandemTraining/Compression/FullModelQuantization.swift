import Foundation
import TandemCore

/// A float model quantized to int8 as it is, without distillation or pruning (`tandem compress --int8-only`), and
/// whether the int8 model is faithful enough to stand in for it.
///
/// The same post-training quantization as ``CompressionPipeline`` (per-channel symmetric weights, per-tensor
/// asymmetric activations calibrated on training windows) runs on the float model's own graph, whose batch norms
/// the artifact already holds folded. Both models then classify the held-out test windows. The int8 model
/// replaces the float one only if ``Gate`` holds: top-1 agreement with the float model of at least
/// ``Gate/minimumAgreement`` and a test accuracy at most ``Gate/maximumAccuracyDrop`` below the float model's
/// (an int8 model that scores higher is accepted). The measured values and the gate's bounds go into the
/// manifest's metrics (`int8_agreement_with_float`, `float_test_accuracy`, `test_accuracy`, `test_windows`,
/// `int8_gate_minimum_agreement`, `int8_gate_maximum_accuracy_drop`), so whoever loads the artifact can see
/// what it was checked against.
public struct FullModelQuantization: Sendable {
    /// What an int8 full model must show on the test windows to be accepted.
    public struct Gate: Sendable, Equatable {
        /// Smallest accepted fraction of test windows on which int8 and float predict the same class.
        public var minimumAgreement: Double
        /// Largest accepted drop of the int8 test accuracy below the float model's, as a fraction.
        public var maximumAccuracyDrop: Double

        /// The bounds: 99.5 % agreement, 0.3 percentage points of accuracy.
        public static let standard = Gate(minimumAgreement: 0.995, maximumAccuracyDrop: 0.003)

        /// Creates a gate.
        public init(minimumAgreement: Double, maximumAccuracyDrop: Double) {
            self.minimumAgreement = minimumAgreement
            self.maximumAccuracyDrop = maximumAccuracyDrop
        }
    }

    /// The int8 artifact, unsigned, with the measurements and the gate in its manifest metrics.
    public var artifact: ModelArtifact
    /// The int8 model itself.
    public var quantized: QuantizedModel
    /// The float model's top-1 accuracy on the test windows.
    public var floatAccuracy: Double
    /// The int8 model's top-1 accuracy on the test windows.
    public var int8Accuracy: Double
    /// Fraction of test windows on which the two predict the same class.
    public var agreement: Double
    /// Number of test windows.
    public var testWindows: Int
    /// The bounds it was checked against.
    public var gate: Gate

    /// Whether the int8 model passed ``gate``.
    public var isAccepted: Bool {
        agreement >= gate.minimumAgreement && floatAccuracy - int8Accuracy <= gate.maximumAccuracyDrop
    }

    /// Quantizes `model` and measures it against the float model on `data.test`.
    ///
    /// - Parameters:
    ///   - model: the float model (batch norms folded, as artifacts hold them).
    ///   - manifest: its manifest; the int8 manifest keeps its name, input and classes, with it as parent.
    ///   - data: normalized windows: `train` supplies the calibration windows, `test` the measurement.
    ///   - calibrationWindows: how many training windows calibrate the activation ranges (evenly spaced).
    ///   - method: the activation range calibration.
    ///   - gate: the acceptance bounds recorded with the result.
    ///   - version: the int8 model's version.
    /// - Throws: `QuantizationError` when the graph has a layer the int8 engine does not run or a tensor is not
    ///   finite, `ModelError` when the windows do not fit the model, `ArtifactError` from packaging.
    public static func run(
        model: FloatModel, manifest: ModelManifest, data: CompressionData, calibrationWindows: Int,
        method: CalibrationMethod, gate: Gate = .standard, version: String
    ) throws -> FullModelQuantization {
        let train = data.train
        let test = data.test
        let count = max(1, min(calibrationWindows, train.count))
        let calibration = train.windows.gathering(
            Array(stride(from: 0, to: train.count, by: max(1, train.count / count)).prefix(count)))
        let quantized = try PostTrainingQuantizer(method: method).quantize(model, calibration: calibration)
        let floatPredictions = try model.logits(for: test.windows).argmaxRows()
        let int8 = try Int8Engine(model: quantized).classify(windows: test.windows)
        let int8Predictions = int8.confidences.map(\.label)
        let total = Double(max(test.count, 1))
        func accuracy(_ predictions: [Int]) -> Double {
            Double(zip(predictions, test.labels).filter { $0 == $1 }.count) / total
        }
        let floatAccuracy = accuracy(floatPredictions)
        let int8Accuracy = accuracy(int8Predictions)
        let agreement = Double(zip(floatPredictions, int8Predictions).filter { $0 == $1 }.count) / total

        var metrics = CompressionPipeline.confidencePercentiles(int8.confidences)
        metrics["test_accuracy"] = int8Accuracy
        metrics["float_test_accuracy"] = floatAccuracy
        metrics["int8_agreement_with_float"] = agreement
        metrics["test_windows"] = Double(test.count)
        metrics["int8_gate_minimum_agreement"] = gate.minimumAgreement
        metrics["int8_gate_maximum_accuracy_drop"] = gate.maximumAccuracyDrop
        let int8Manifest = ModelManifest(
            name: manifest.name, version: version, parentVersion: manifest.version,
            createdAt: ISO8601DateFormatter().string(from: Date()), architecture: [], input: manifest.input,
            classNames: manifest.classNames, trainingDataDigest: manifest.trainingDataDigest, metrics: metrics)
        let artifact = try ModelArtifact(
            quantized: quantized, manifest: int8Manifest, goldenInputs: test.windows.slice(0..<min(8, test.count)))
        return FullModelQuantization(
            artifact: artifact, quantized: quantized, floatAccuracy: floatAccuracy, int8Accuracy: int8Accuracy,
            agreement: agreement, testWindows: test.count, gate: gate)
    }

    /// Checks ``gate``.
    ///
    /// - Throws: ``CompressionError`` with code `int8UnfaithfulToFloat`, whose message gives the agreement, both
    ///   accuracies and the bounds.
    public func requireAccepted() throws {
        guard !isAccepted else { return }
        func percent(_ x: Double) -> String { String(format: "%.2f %%", x * 100) }
        func points(_ x: Double) -> String { String(format: "%.2f pp", x * 100) }
        throw CompressionError(
            .int8UnfaithfulToFloat,
            "the int8 model agrees with the float model on \(percent(agreement)) of the \(testWindows) test windows "
                + "(at least \(percent(gate.minimumAgreement)) is required) and scores \(percent(int8Accuracy)) "
                + "against the float model's \(percent(floatAccuracy)) (at most \(points(gate.maximumAccuracyDrop)) "
                + "below is accepted)")
    }
}
